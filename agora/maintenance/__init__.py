"""Operations on a whole store, run by the ``agora`` command rather than by the hub: backup and restore, copying a
store to another engine (SQLite ⇄ PostgreSQL), engine-independent checksums, and the v4 import.

They read and write tables through the metadata of ``agora.store.schema`` (every table, in foreign-key order), so a
table added to the schema is backed up, copied and checked without a change here.
"""
