"""The hub's time: the database's clock, carried forward by a clock no one sets.

Replicas compare one another's timestamps — a lease's expiry, a message's visibility, an agent's last heartbeat — so
they must agree on what time it is, and a step of a machine's wall clock (NTP correcting it, an operator, a virtual
machine resumed) must not move any of them: a replica 5 minutes ahead would take every lease for expired and requeue
work another agent is doing. So a hub on PostgreSQL reads the server's clock when it starts and every
``ANCHOR_SECONDS`` after (``follow_database``), and between readings adds the time that passed by the boot clock
(monotonic, and counting a suspended machine's sleep too). A reading that took longer than ``MAX_ROUND_TRIP`` is let
go (its midpoint says little) unless it is the first, and the clock never goes back: a correction backwards holds it until the time catches
up. On SQLite (one process, whose database reads this machine's clock too) the wall clock is read the same way.
Tests and billing replace the clock object.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from agora.store.ops import system as system_ops

if TYPE_CHECKING:
    from agora.store import Store

log = logging.getLogger("agora.clock")

ANCHOR_SECONDS = 30.0  # how often the hub reads the database's clock again
MAX_ROUND_TRIP = 0.5  # seconds: a slower reading of the server's clock is not used
STEP_LOGGED = timedelta(seconds=1)  # a correction at least this large is logged (a clock stepped)
_TICKS = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


def ticks() -> float:
    """Seconds by a clock nobody sets (Linux's boot clock: it goes on while the machine sleeps)."""
    return time.clock_gettime(_TICKS)


class Clock:
    def __init__(self) -> None:
        self._wall = datetime.now(timezone.utc)
        self._at = ticks()
        self._last = self._wall
        self._followed = False  # a reading of the database's clock was taken (any, the first time: the wall's is worse)

    def now(self) -> datetime:
        current = self._wall + timedelta(seconds=ticks() - self._at)
        if current > self._last:
            self._last = current
        return self._last

    def anchor(self, wall: datetime, at: float) -> timedelta:
        """From now on, ``wall`` was the time at boot-clock instant ``at``; how far that moved the clock."""
        moved = wall - (self._wall + timedelta(seconds=at - self._at))
        self._wall, self._at = wall, at
        return moved

    async def follow_database(self, store: Store) -> None:
        """Anchor to the database's clock: PostgreSQL's server clock, read halfway through the statement's round trip
        (timed inside the operation: the wait for a connection is not part of it); SQLite's is this machine's."""
        if store.dialect == "postgresql":
            sent, wall, answered = await store.read(system_ops.database_time, ticks)
            if answered - sent > MAX_ROUND_TRIP and self._followed:
                return
            at = (sent + answered) / 2
        else:
            wall, at = datetime.now(timezone.utc), ticks()
        moved = self.anchor(wall, at)
        if not self._followed:  # the wall clock read at start may have been ahead: the database's is the time
            self._last, self._followed = wall, True
        if abs(moved) >= STEP_LOGGED:
            log.warning("the hub's clock follows the database's", extra={"moved_seconds": round(moved.total_seconds(), 3)})
