"""The hub's time: the database's clock, carried forward by this process's monotonic clock.

Replicas compare one another's timestamps — a lease's expiry, a message's visibility, an agent's last heartbeat — so
they must agree on what time it is, and a step of a machine's wall clock (NTP correcting it, an operator, a virtual
machine resumed) must not move any of them: a replica 5 minutes ahead would take every lease for expired and requeue
work another agent is doing. So a hub on PostgreSQL reads the server's clock when it starts and every
``ANCHOR_SECONDS`` after (``follow_database``), and between readings adds the time its monotonic clock measured; on
SQLite (one process) the wall clock is read once, at start. Tests and billing replace the clock object.
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

ANCHOR_SECONDS = 30.0  # how often a hub on PostgreSQL reads the server's clock again
STEP_LOGGED = timedelta(seconds=1)  # a correction at least this large is logged (the server's clock stepped)


class Clock:
    def __init__(self) -> None:
        self._wall = datetime.now(timezone.utc)
        self._at = time.monotonic()

    def now(self) -> datetime:
        return self._wall + timedelta(seconds=time.monotonic() - self._at)

    def anchor(self, wall: datetime, at: float) -> timedelta:
        """From now on, ``wall`` was the time at monotonic instant ``at``; how far that moved the clock."""
        moved = wall - (self._wall + timedelta(seconds=at - self._at))
        self._wall, self._at = wall, at
        return moved

    async def follow_database(self, store: Store) -> None:
        """Anchor to the database server's clock (PostgreSQL; SQLite's clock is this machine's: nothing to do), read
        halfway through the round trip that fetched it."""
        if store.dialect != "postgresql":
            return
        sent = time.monotonic()
        wall = await store.read(system_ops.database_time)
        moved = self.anchor(wall, (sent + time.monotonic()) / 2)
        if abs(moved) >= STEP_LOGGED:
            log.warning("the hub's clock follows the database's", extra={"moved_seconds": round(moved.total_seconds(), 3)})
