"""Keyset pagination: the cursor is the last key seen, base64-wrapped so clients treat it as opaque."""

from __future__ import annotations

import base64
import re

from agora_sdk.errors import InvalidArgument


def encode_cursor(key: str | int) -> str:
    return base64.urlsafe_b64encode(str(key).encode()).decode().rstrip("=")


_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")  # every key a cursor carries: ids and sequence numbers


def decode_cursor(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        key = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode("ascii")
    except ValueError as exc:
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"}) from exc
    if not _KEY.match(key):
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"})
    return key


def page(rows: list, limit: int, key) -> tuple[list, str | None]:
    """Rows were fetched with ``limit + 1``: trim and return the cursor for the next page, if any."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(key(rows[-1]))
    return rows, None
