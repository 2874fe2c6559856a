"""Wake-ups: callers park on keys ("agent:<id>", "tenant:<id>", "events:<tenant>"), notifier events wake them.

A waiter is armed *before* the store is checked, so an event that lands between the check and the
wait is never missed. A wake-up carries no data: the woken caller reads the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator

from agora.bus import Event, Notifier

# Which keys an event wakes.
_AGENT_EVENTS = {"message_received": "to_agent"}
_TENANT_EVENTS = {"broadcast_message", "topic_message"}
# Task events after which no task can have become claimable: they do not wake parked claimers.
_NO_NEW_WORK = {"task_claimed", "task_updated"}
# A task's end makes work claimable only through the tasks that depend on it.
_ENDS = {"task_completed", "task_failed", "task_cancelled", "task_dead_lettered"}


def keys_for(event: Event) -> list[str]:
    field = _AGENT_EVENTS.get(event.type)
    if field is not None:
        return [f"agent:{event.data.get(field)}"]
    if event.type in _TENANT_EVENTS:
        return [f"tenant:{event.tenant_id}"]
    if event.type == "a2a_updated":
        keys = [f"a2a:{event.data['task_id']}"]  # its A2A callers and streams
        return keys + ["a2a:push"] if event.data.get("push") else keys  # and the deliverers, if it has webhooks
    keys = [f"events:{event.tenant_id}", "events:*"]  # a hub event: live streams of its tenant, and admins'
    if event.type.startswith("task_"):
        keys.append(f"task:{event.data.get('task_id')}")  # callers waiting for that task to finish
        if event.type not in _NO_NEW_WORK and (event.type not in _ENDS or event.data.get("has_dependents", True)):
            keys.append(f"tasks:{event.tenant_id}")  # claimers waiting for work in that tenant
    elif event.type == "instance_updated":
        keys.append(f"instance:{event.data.get('instance_id')}")  # a terminate waiting for the node to stop it
    return keys



class Waiter:
    """Set by the next wake-up of any key it was armed with; ``fired`` tells which keys woke it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.fired: set[str] = set()

    def set(self, key: str) -> None:
        self.fired.add(key)
        self._event.set()

    async def wait(self) -> None:
        await self._event.wait()


class Wakeups:
    def __init__(self, notifier: Notifier):
        self._notifier = notifier
        self._waiters: dict[str, set[Waiter]] = {}

    async def run(self) -> None:
        """Feed wake-ups from the notifier until cancelled."""
        queue = self._notifier.subscribe(maxsize=10_000)
        try:
            while True:
                self.wake(keys_for(await queue.get()))
        finally:
            self._notifier.unsubscribe(queue)

    def wake(self, keys: Iterable[str]) -> None:
        for key in keys:
            for waiter in self._waiters.get(key, ()):
                waiter.set(key)

    @contextlib.contextmanager
    def armed(self, keys: list[str]) -> Iterator[Waiter]:
        """A waiter set by the next wake-up of any of ``keys`` (register it before checking the store)."""
        waiter = Waiter()
        for key in keys:
            self._waiters.setdefault(key, set()).add(waiter)
        try:
            yield waiter
        finally:
            for key in keys:
                waiting = self._waiters.get(key)
                if waiting is not None:
                    waiting.discard(waiter)
                    if not waiting:
                        del self._waiters[key]
