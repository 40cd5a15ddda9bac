"""Persistence: SQLAlchemy tables and repositories, Alembic migrations (SQLite by default, PostgreSQL)."""
