"""Broadcast and topic messages rendered once for every live stream that is lent them.

A broadcast to 100 streams is the same JSON in each of them (a lent message is delivered once and carries the
subscription it came through), so it is rendered once: ~40% of the hub's work in a broadcast storm was reading whole
message rows and rendering each for every stream. A stored message never changes and a seq is never handed out
twice, so an entry never goes stale; the oldest entries go when the cache is full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Key = tuple[int, str | None]  # (seq, subscription_id)


class RenderedMessages:
    """(seq, subscription_id) → the message's JSON as a lent delivery.

    Used inside the store's write operations only (SQLite's one writer thread; the event loop on PostgreSQL), so the
    store's "known" check and the rendering see the same entries."""

    def __init__(self, render: Callable[[dict[str, Any]], dict[str, Any]], capacity: int = 8192):
        self._render = render
        self._capacity = capacity
        self._items: dict[Key, bytes] = {}  # insertion order: the first is the oldest

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def render(self, rows: list[dict[str, Any]], fetch: Callable[[list[int]], list[dict[str, Any]]]) -> list[bytes]:
        """Each row's message JSON. A lent row that came without its body (known when the store looked) and has left
        the cache since (another operation ran in between) is completed with ``fetch(seqs)`` first."""
        missing = [r["seq"] for r in rows if "message_id" not in r and (r["seq"], r["subscription_id"]) not in self._items]
        if missing:
            whole = {w["seq"]: w for w in fetch(missing)}
            for r in rows:
                if r["seq"] in whole:
                    r.update({k: v for k, v in whole[r["seq"]].items() if k not in r})
        return self.whole(rows)

    def whole(self, rows: list[dict[str, Any]]) -> list[bytes]:
        """Each row's message JSON, for rows that hold the whole message."""
        return [self._json(r) for r in rows]

    def _json(self, row: dict[str, Any]) -> bytes:
        if not row.get("lent"):
            return orjson.dumps(self._render(row))
        key = (row["seq"], row["subscription_id"])
        found = self._items.get(key)
        if found is None:
            found = self._items[key] = orjson.dumps(self._render(row))
            if len(self._items) > self._capacity:
                del self._items[next(iter(self._items))]
        return found
