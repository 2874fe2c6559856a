"""Keyset pagination: the cursor is the last key seen, base64-wrapped so clients treat it as opaque."""

from __future__ import annotations

import base64
import re

import orjson

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


def encode_position(values: tuple[str, ...]) -> str:
    """A cursor for a listing in another order than its key's: the last row's sort values, its key last."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_position(cursor: str | None, size: int, *, any_key: bool = False) -> tuple[str, ...] | None:
    """The sort values ``encode_position`` gave; ``any_key``: the key is not an id of this hub's but a caller's
    string (a conversation id), bound as a parameter like any other value."""
    if not cursor:
        return None
    try:
        values = orjson.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True))
    except ValueError as exc:
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"}) from exc
    if not (isinstance(values, list) and len(values) == size and all(isinstance(v, str) and len(v) <= 256 for v in values)):
        raise InvalidArgument("cursor is not one this hub issued (or not of this sort order)", details={"field": "cursor"})
    if not any_key and not _KEY.match(values[-1]):
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"})
    return tuple(values)


def page(rows: list, limit: int, key) -> tuple[list, str | None]:
    """Rows were fetched with ``limit + 1``: trim and return the cursor for the next page, if any (``key`` gives the
    last row's key, or its position: a tuple of sort values)."""
    if len(rows) > limit:
        rows = rows[:limit]
        last = key(rows[-1])
        return rows, encode_position(last) if isinstance(last, tuple) else encode_cursor(last)
    return rows, None
