"""A full disk, however it reaches us: the OS's ENOSPC, or SQLite's SQLITE_FULL (its name for the same), wrapped in
whatever exceptions the layers above put around it."""

from __future__ import annotations

import errno
import sqlite3


def is_storage_full(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error) and getattr(seen, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if isinstance(seen, OSError) and seen.errno == errno.ENOSPC:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
