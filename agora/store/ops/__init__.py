"""Store operations: synchronous functions ``op(conn, ...)`` in SQLAlchemy Core, run by a Store."""
