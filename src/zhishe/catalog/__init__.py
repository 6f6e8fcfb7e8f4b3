"""The dataset catalog: versioned datasets with typed, classified schemas.

Owns the tables ``datasets``, ``dataset_columns``, ``dataset_versions``, ``definition_changes`` and
``import_jobs``; the rows themselves are Delta Lake tables under the lake root (one per dataset,
see ``catalog.lake``). Metadata follows DCAT-AP 3 (title, description, theme, keyword, publisher,
contactPoint, license, accrualPeriodicity, temporal, spatial). Every import commits a version;
``reads.read_rows`` is the one read function every other domain uses.
"""
