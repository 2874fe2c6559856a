"""Notifier interface: publish hub events, subscribe with a bounded queue."""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    type: str
    tenant_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    # What this replica's waiters may use instead of reading the store again (e.g. the settled A2A task); it never
    # leaves the replica: other replicas get ``data`` alone, and read.
    local: Any = field(default=None, compare=False, repr=False)


class Notifier(abc.ABC):
    @abc.abstractmethod
    async def publish(self, event: Event) -> None:
        """Fan the event out to every subscriber (on every replica, for distributed notifiers)."""

    @abc.abstractmethod
    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        """A queue receiving events from now on; a subscriber that falls behind loses events, never memory."""

    @abc.abstractmethod
    def unsubscribe(self, q: asyncio.Queue[Event]) -> None: ...

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def healthy(self) -> bool:
        return True
