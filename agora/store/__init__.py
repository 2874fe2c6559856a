"""Storage: one schema, one set of queries, two engines (embedded SQLite, PostgreSQL)."""

from .base import Store, open_store

__all__ = ["Store", "open_store"]
