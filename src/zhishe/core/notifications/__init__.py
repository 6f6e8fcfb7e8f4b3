"""In-app notifications: what a user should know about (a request to answer, a new version, a fix)."""
