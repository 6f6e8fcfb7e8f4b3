"""The shared core: configuration, database, identity, audit chain, errors, i18n and the web shell."""
