"""One catalog read for every open tab that asks the same thing after the same change.

A change wakes every live region that shows it at once (``live.py``); tabs open on one view of one key then ask the
catalog the same question within milliseconds. The first asks; the others take its answer, but only from a read that
started after they were woken, so each still sees everything that happened before its wake-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

KEEP_SECONDS = 5.0  # a finished read is offered this long to tabs woken before it started (then dropped)


class SharedReads:
    def __init__(self) -> None:
        self._reads: dict[Hashable, tuple[float, asyncio.Future[Any]]] = {}
        self._swept = time.monotonic()

    async def read(self, key: Hashable, woken_at: float, run: Callable[[], Awaitable[Any]]) -> Any:
        """``run()``'s answer, or that of a read of ``key`` started at or after ``woken_at`` (its error, too)."""
        now = time.monotonic()
        held = self._reads.get(key)
        if held is None or held[0] < woken_at:
            self._sweep(now)
            held = (now, asyncio.ensure_future(run()))
            self._reads[key] = held
        return await asyncio.shield(held[1])  # one tab closing does not cancel the read the others wait for

    def _sweep(self, now: float) -> None:
        if now - self._swept < KEEP_SECONDS:
            return
        self._swept = now
        for key in [k for k, (started, read) in self._reads.items() if read.done() and now - started > KEEP_SECONDS]:
            read = self._reads.pop(key)[1]
            if not read.cancelled():
                read.exception()  # retrieved: an error nobody else waited for is not "never retrieved"
