"""The web shell: templates, static assets, CSRF, middleware and error rendering."""
