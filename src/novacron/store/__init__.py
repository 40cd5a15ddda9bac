"""Persistence: SQLAlchemy tables and repositories, Alembic migrations (SQLite by default, PostgreSQL)."""

from novacron.store import ha_tables as _ha_tables  # noqa: F401 - registers the HA tables on the metadata
from novacron.store.records import ActionRecord
from novacron.store.repo import AuditEntry, ConfigVersion, ProcessRecord, Store, TargetStatusRow

__all__ = ["ActionRecord", "AuditEntry", "ConfigVersion", "ProcessRecord", "Store", "TargetStatusRow"]
