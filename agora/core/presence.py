"""The agents with a live stream on this replica, whose presence is written for all of them at once.

A live stream is a sign of life. Each stream wrote it on its own every interval, in a transaction that read the agent,
updated it and read it again: ~1.1 ms of the hub's CPU and ~0.4 ms of PostgreSQL's each time, so at the default 30 s
one core of hub per ~27,000 connected agents did nothing else. The streams now only say they are open
(``opened``/``closed``); once an interval ``services.agents.touch_live`` writes the presence of every agent connected
here in a statement per thousand agents.
"""

from __future__ import annotations

from collections import Counter

from agora.config import Settings


def interval(settings: Settings) -> float:
    """Seconds between two presence writes of a connected agent: a third of the silence that makes it offline."""
    return max(1.0, min(30.0, settings.offline_after_seconds / 3))


class LiveAgents:
    """How many live streams each agent has open on this replica."""

    def __init__(self) -> None:
        self._streams: Counter[str] = Counter()

    def opened(self, agent_id: str) -> None:
        self._streams[agent_id] += 1

    def closed(self, agent_id: str) -> None:
        self._streams[agent_id] -= 1
        if self._streams[agent_id] <= 0:
            del self._streams[agent_id]

    def agent_ids(self) -> list[str]:
        """The agents with a stream open, in id order (the order their rows are locked in)."""
        return sorted(self._streams)
