"""In-process notifier for the embedded hub: asyncio fan-out to bounded queues."""

from __future__ import annotations

import asyncio

from .base import Event, Notifier


class InProcessNotifier(Notifier):
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self.dropped = 0

    async def publish(self, event: Event) -> None:
        for q in tuple(self._subscribers):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                self.dropped += 1  # the subscriber catches up from the store by cursor

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(q)
