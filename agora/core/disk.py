"""A full disk, however it reaches us: the OS's ENOSPC, or SQLite's SQLITE_FULL (its name for the same), wrapped in
whatever exceptions the layers above put around it."""

from __future__ import annotations

import errno
import sqlite3


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc``, or one it was raised from or while handling (a rollback failing after SQLite gave up the
    transaction for a full disk), is a full disk."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        pending += [e for e in (getattr(current, "orig", None), current.__cause__, current.__context__) if isinstance(e, BaseException)]
    return False
