"""Wake-ups: callers park on keys ("agent:<id>", "tenant:<id>", "events:<tenant>", "messages:<tenant>"), notifier
events wake them.

A waiter is armed *before* the store is checked, so an event that lands between the check and the
wait is never missed. A wake-up carries no data: the woken caller reads the store again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

from agora.bus import Event, Notifier
from agora.observability import metrics

# Which keys an event wakes.
_AGENT_EVENTS = {"message_received": "to_agent"}
_TENANT_EVENTS = {"broadcast_message", "topic_message"}
# Task events after which no task can have become claimable: they do not wake parked claimers.
_NO_NEW_WORK = {"task_claimed", "task_updated"}
# A task's end makes work claimable only through the tasks that depend on it.
_ENDS = {"task_completed", "task_failed", "task_cancelled", "task_dead_lettered"}
# A task with a new target (a new one, or one reassigned) is for the claimers of that target only.
_NEW_TARGET = {"task_assigned", "task_reassigned"}


def inbox_key(agent_id: str) -> str:
    """Woken by each direct message to the agent: its inbox readers, and the console's tail of its messages."""
    return f"agent:{agent_id}"


def conversation_key(tenant_id: str, conversation_id: str) -> str:
    """The wake-up key of a conversation's live views: a task of it emitted output."""
    return f"conversation:{tenant_id}:{conversation_id}"


def keys_for(event: Event) -> list[str]:
    if event.type == "output_emitted":  # a task's output (agora.task.emit): its watchers alone, and its conversation's
        conversation = event.data.get("conversation_id")
        return [f"output:{event.data['task_id']}", *([conversation_key(event.tenant_id, conversation)] if conversation else [])]
    field = _AGENT_EVENTS.get(event.type)
    if field is not None:
        if event.data.get("handed"):  # a live stream of the agent has it already (core/handoff): nothing to read
            return _message_views(event)
        return [inbox_key(event.data.get(field)), *_message_views(event)]
    if event.type in _TENANT_EVENTS:
        return [f"tenant:{event.tenant_id}", *_message_views(event)]
    if event.type == "a2a_updated":
        keys = [f"a2a:{event.data['task_id']}"]  # its A2A streams
        if event.data.get("settled"):
            keys.append(f"a2a-settled:{event.data['task_id']}")  # its blocking callers
        return keys + ["a2a:push"] if event.data.get("push") else keys  # and the deliverers, if it has webhooks
    keys = [f"events:{event.tenant_id}", "events:*"]  # a hub event: live streams of its tenant, and admins'
    if event.type.startswith("task_"):
        keys.append(f"task:{event.data.get('task_id')}")  # callers waiting for that task to finish
        if event.type in _NEW_TARGET:
            if not event.data.get("claimed_by"):  # one leased in the transaction that made it is no one else's
                keys += _new_task_keys(event.tenant_id, event.data)
        elif event.type not in _NO_NEW_WORK and (event.type not in _ENDS or event.data.get("has_dependents", True)):
            keys.append(f"tasks:{event.tenant_id}")  # every claimer waiting for work in that tenant
    elif event.type == "instance_updated":
        keys.append(f"instance:{event.data.get('instance_id')}")  # a terminate waiting for the node to stop it
    return keys


def _message_views(event: Event) -> list[str]:
    """Views of a tenant's messages (the console's live tail): of its tenant, and the admin's of every tenant."""
    return [f"messages:{event.tenant_id}", "messages:*"]


def _new_task_keys(tenant_id: str, task: dict[str, Any]) -> list[str]:
    """A new (or reassigned) task wakes the claimers that may take it, not every claimer of the tenant: each woken
    claimer runs a claim in the store, and a claim that finds nothing walks every pending task it cannot take. (One
    required capability is enough to pick the key: a claimer with all of them is armed with each.) ``…:new`` wakes
    claimers that do not yet know their own capabilities."""
    base = f"tasks:{tenant_id}"
    if task.get("assignee"):
        who = f"{base}:for:{task['assignee']}"
    elif task.get("required_capabilities"):
        who = f"{base}:cap:{min(task['required_capabilities'])}"
    else:
        who = f"{base}:open"
    return [who, f"{base}:new"]


def claimer_keys(tenant_id: str, agent: dict[str, Any] | None) -> list[str]:
    """What a parked claimer is armed with: every wake-up of work in its tenant that it may take (``agent``: its row,
    or None before the first claim has read it)."""
    base = f"tasks:{tenant_id}"
    if agent is None:
        return [base, f"{base}:new"]
    mine = [f"{base}:for:{agent['agent_id']}", f"{base}:for:{agent['agent_name']}", f"{base}:open"]
    return [base, *mine, *(f"{base}:cap:{c}" for c in agent["capabilities"])]


class Waiter:
    """Set by the next wake-up of any key it was armed with; ``fired`` tells which keys woke it."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.fired: set[str] = set()
        self.carried: dict[str, Any] = {}  # key -> what the event that woke it carried for this replica (``Event.local``)

    def set(self, key: str, local: Any = None) -> None:
        self.fired.add(key)
        if local is not None:
            self.carried[key] = local
        self._event.set()

    async def wait(self, timeout: float | None = None) -> bool:
        """Until a wake-up (True) or, if given, ``timeout`` seconds (False). (``asyncio.timeout``, not ``wait_for``,
        which would wait in a task of its own: one more task, and two more turns of the event loop once woken.)"""
        if timeout is None:
            await self._event.wait()
            return True
        try:
            async with asyncio.timeout(timeout):
                await self._event.wait()
        except TimeoutError:
            return False
        return True

    def clear(self) -> None:
        """Wait again, still armed: a wake-up from now on sets it (for a caller that parks many times in a row)."""
        self.fired.clear()
        self.carried.clear()
        self._event.clear()


BUS_DOWN_POLL = 0.25  # seconds between looks at the store of every parked caller while the bus is down


class Wakeups:
    def __init__(self, notifier: Notifier):
        self._notifier = notifier
        self._waiters: dict[str, set[Waiter]] = {}
        self._handlers: dict[str, Callable[[Event], None]] = {}
        self.draining = False

    def on(self, event_type: str, handler: Callable[[Event], None]) -> None:
        """Hand events of ``event_type`` to ``handler`` (on this loop, as they come) instead of waking anyone."""
        self._handlers[event_type] = handler

    def drain(self) -> None:
        """The hub is shutting down: every parked caller is woken once. Long-polls (``remaining`` is 0 from now on)
        answer with what there is (no task, no message) instead of waiting out their time and being cancelled by the
        server; streams end, so clients reconnect to another replica or to the restarted hub. Background loops just
        look once more and park again."""
        self.draining = True
        self.wake_everyone()

    def wake_everyone(self) -> None:
        """Wake every parked caller once: each looks at the store again."""
        for key, waiters in list(self._waiters.items()):
            for waiter in list(waiters):
                waiter.set(key)

    async def poll_while_the_bus_is_down(self, interval: float = BUS_DOWN_POLL) -> None:
        """While the notifier cannot reach the other replicas (Redis away), wake every parked caller each ``interval``
        seconds: what another replica stored then reaches a long-poll, a parked claim or a live stream here within
        that, instead of at its own timeout. ``agora_bus_up`` says which way it is."""
        while True:
            await asyncio.sleep(interval)
            up = self._notifier.healthy()
            metrics.BUS_UP.set(1 if up else 0)
            if not up:
                self.wake_everyone()

    async def until(self, keys: list[str], read: Callable[[], Awaitable[T]], done: Callable[[T], bool], recheck: float) -> T:
        """Read again each time ``keys`` wake (armed before each read) until ``done`` says yes, and return that read;
        a wake-up lost between replicas delays it by ``recheck`` seconds at most."""
        while True:
            with self.armed(keys) as woken:
                value = await read()
                if done(value):
                    return value
                await woken.wait(recheck)

    def remaining(self, deadline: float) -> float:
        """Seconds a long-poll may still wait until its ``deadline`` (a ``time.monotonic()``); none once draining."""
        return 0.0 if self.draining else deadline - time.monotonic()

    async def run(self) -> None:
        """Feed wake-ups from the notifier until cancelled."""
        queue = self._notifier.subscribe(maxsize=10_000)
        try:
            while True:
                event = await queue.get()
                handler = self._handlers.get(event.type)
                if handler is not None:
                    handler(event)
                else:
                    self.wake(keys_for(event), event.local)
        finally:
            self._notifier.unsubscribe(queue)

    def wake(self, keys: Iterable[str], local: Any = None) -> None:
        for key in keys:
            for waiter in self._waiters.get(key, ()):
                waiter.set(key, local)

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
