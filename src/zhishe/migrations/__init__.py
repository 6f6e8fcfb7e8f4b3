"""The one Alembic migration tree (shipped inside the package so `zhishe init` finds it anywhere)."""
