"""Hand-offs: a task made for an agent whose runtime holds a work channel on this replica, with room for it, is leased
to that agent in the transaction that makes it and handed straight to the channel. Likewise a direct message to an
agent with a live stream here is handed out (its delivery hidden for the stream's visibility timeout, as a read of
the stream would) in the send's own statement and handed to the stream: ``Readers``.

The alternative costs a wake-up and a claim (a write of its own) per task; for an A2A turn, whose caller waits for the
answer, that is a third of the round trip. A taker *reserves* room first (so the channel never holds more than the
credit its runtime gave), the transaction leases the task, and the taker pushes it — or gets its room back when the
transaction failed or could not lease it.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")


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


class Reader(Protocol):
    """A live stream of one agent that takes its direct messages (``core/streams.Stream``)."""

    visibility_seconds: float

    def reserve_message(self) -> bool:
        """Take room for one message, if the stream has room and no earlier delivery of its own to send first."""
        ...

    def unreserve_message(self) -> None: ...

    def hand_message(self, row: dict[str, Any]) -> None:
        """Push a message whose delivery was handed out to the stream in a reserved place (the stored row)."""
        ...


class _ByAgent(Generic[T]):
    def __init__(self) -> None:
        self._by_agent: dict[str, list[T]] = {}

    def add(self, agent_id: str, item: T) -> None:
        self._by_agent.setdefault(agent_id, []).append(item)

    def remove(self, agent_id: str, item: T) -> None:
        items = self._by_agent.get(agent_id, [])
        if item in items:
            items.remove(item)
        if not items:
            self._by_agent.pop(agent_id, None)

    def of(self, agent_id: str) -> list[T]:
        return self._by_agent.get(agent_id, [])


class Handoffs:
    """This replica's takers of tasks and readers of direct messages, by agent."""

    def __init__(self) -> None:
        self._takers: _ByAgent[Taker] = _ByAgent()
        self._readers: _ByAgent[Reader] = _ByAgent()

    def add(self, taker: Taker) -> None:
        self._takers.add(taker.agent_id, taker)

    def remove(self, taker: Taker) -> None:
        self._takers.remove(taker.agent_id, taker)

    def reserve(self, agent_id: str, task_type: str) -> Taker | None:
        """A taker of the agent with room for a task of this type, its room reserved; None if none has."""
        for taker in self._takers.of(agent_id):
            if taker.wants(task_type) and taker.reserve():
                return taker
        return None

    def add_reader(self, agent_id: str, reader: Reader) -> None:
        self._readers.add(agent_id, reader)

    def remove_reader(self, agent_id: str, reader: Reader) -> None:
        self._readers.remove(agent_id, reader)

    def reserve_reader(self, agent_id: str) -> Reader | None:
        """A live stream of the agent with room for a direct message, its room reserved; None if none has."""
        for reader in self._readers.of(agent_id):
            if reader.reserve_message():
                return reader
        return None
