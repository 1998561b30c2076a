"""Django's SQLite backend, with the database file created owner-only (see base.py)."""
