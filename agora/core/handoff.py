"""Hand-offs: a task made for an agent whose runtime holds a work channel on this replica, with room for it, is leased
to that agent in the transaction that makes it and handed straight to the channel.

The alternative costs a wake-up and a claim (a write of its own) per task; for an A2A turn, whose caller waits for the
answer, that is a third of the round trip. A taker *reserves* room first (so the channel never holds more than the
credit its runtime gave), the transaction leases the task, and the taker pushes it — or gets its room back when the
transaction failed or could not lease it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Taker(Protocol):
    """A work channel of one agent (``transports/live/work.TaskPush``)."""

    agent_id: str
    lease_seconds: float

    def wants(self, task_type: str) -> bool: ...

    def reserve(self) -> bool:
        """Take room for one task from the runtime's credit, if there is any."""
        ...

    def unreserve(self) -> None: ...

    def hand(self, claim: Any) -> None:
        """Push a task leased to the agent in a reserved place (an ``agora_sdk.wire.tasks.Claim``)."""
        ...


class Handoffs:
    """This replica's takers, by agent."""

    def __init__(self) -> None:
        self._takers: dict[str, list[Taker]] = {}

    def add(self, taker: Taker) -> None:
        self._takers.setdefault(taker.agent_id, []).append(taker)

    def remove(self, taker: Taker) -> None:
        takers = self._takers.get(taker.agent_id, [])
        if taker in takers:
            takers.remove(taker)
        if not takers:
            self._takers.pop(taker.agent_id, None)

    def reserve(self, agent_id: str, task_type: str) -> Taker | None:
        """A taker of the agent with room for a task of this type, its room reserved; None if none has."""
        for taker in self._takers.get(agent_id, ()):
            if taker.wants(task_type) and taker.reserve():
                return taker
        return None
