"""Alembic environment and revisions of the contracting schema (see db/migrate.py)."""
