"""What the hub did, over time, per tenant: messages stored, tasks created/done/failed, tool calls, their errors and
latency — the series the console's overview charts (``agora.query.activity``).

Each replica counts what happens on it into ten-second buckets in memory (a dict update per call) and, every few
seconds, writes the buckets that are over to the ``activity`` table, one row per bucket, tenant and replica — so a
reader sums every replica's rows, and a replica's death loses at most its last unwritten buckets. A read adds this
replica's unwritten buckets, so what happens here shows at once; another replica's, within ``FLUSH_SECONDS`` + one
bucket. Latency is kept as counts per bound (``LATENCY_BOUNDS_MS``), which add across replicas and buckets into
percentiles.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agora.bus import Event
from agora.store.schema import LATENCY_COLUMNS

from .clock import Clock

BUCKET_SECONDS = 10
FLUSH_SECONDS = 5.0
# Upper bounds (ms) of the latency counts; the last one catches everything slower.
LATENCY_BOUNDS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.inf)
COUNTS = ("messages", "tasks_created", "tasks_done", "tasks_failed", "calls", "rejected", "failed")

# Task events as the overview counts them.
TASK_EVENT_COUNTS = {
    "task_assigned": "tasks_created",
    "task_completed": "tasks_done",
    "task_failed": "tasks_failed",
    "task_dead_lettered": "tasks_failed",
}


@dataclass
class Bucket:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS_MS))

    def add(self, other: Bucket) -> None:
        for name, n in other.counts.items():
            self.counts[name] += n
        self.latency = [a + b for a, b in zip(self.latency, other.latency)]

    def percentile_ms(self, fraction: float) -> float | None:
        """The bound under which ``fraction`` of the calls finished (None without calls)."""
        total = sum(self.latency)
        if not total:
            return None
        seen = 0
        for bound, n in zip(LATENCY_BOUNDS_MS, self.latency):
            seen += n
            if seen >= fraction * total:
                return bound if bound != math.inf else float(LATENCY_BOUNDS_MS[-2])
        return None


def bucket_start(at: datetime) -> datetime:
    epoch = int(at.timestamp())
    return datetime.fromtimestamp(epoch - epoch % BUCKET_SECONDS, UTC)


class Activity:
    """This replica's counts not yet in the store."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.replica = secrets.token_hex(6)  # a row's author: replicas never write the same row
        self._pending: dict[tuple[datetime, str], Bucket] = {}

    def _bucket(self, tenant: str) -> Bucket:
        key = (bucket_start(self._clock.now()), tenant)
        bucket = self._pending.get(key)
        if bucket is None:
            bucket = self._pending[key] = Bucket()
        return bucket

    def count(self, tenant: str, name: str, n: int = 1) -> None:
        self._bucket(tenant).counts[name] += n

    def call(self, tenant: str, status: int, seconds: float) -> None:
        """A tool call answered with ``status`` (200, or its error's) after ``seconds``."""
        bucket = self._bucket(tenant)
        bucket.counts["calls"] += 1
        if status >= 500:
            bucket.counts["failed"] += 1
        elif status >= 400:
            bucket.counts["rejected"] += 1
        ms = seconds * 1000
        bucket.latency[next(i for i, bound in enumerate(LATENCY_BOUNDS_MS) if ms <= bound)] += 1

    def saw(self, events: Iterable[Event]) -> None:
        """Hub events announced on this replica (each event is announced once, by the replica it happened on)."""
        for event in events:
            name = TASK_EVENT_COUNTS.get(event.type)
            if name is not None and event.tenant_id is not None:
                self.count(event.tenant_id, name)

    def take_finished(self) -> list[dict[str, Any]]:
        """The buckets that are over, as ``activity`` rows, removed from memory (the caller writes them)."""
        current = bucket_start(self._clock.now())
        done = [key for key in self._pending if key[0] < current]
        return [self._row(key, self._pending.pop(key)) for key in done]

    def restore(self, rows: list[dict[str, Any]]) -> None:
        """Rows whose write failed go back, to be written with the next ones."""
        for row in rows:
            self._pending.setdefault((row["bucket_start"], row["tenant_id"]), Bucket()).add(bucket_of(row))

    def unwritten(self, tenant: str | None, since: datetime) -> list[tuple[datetime, Bucket]]:
        """This replica's buckets still in memory, of one tenant (or all: None), from ``since``."""
        return [(start, b) for (start, t), b in self._pending.items() if start >= since and (tenant is None or t == tenant)]

    def _row(self, key: tuple[datetime, str], bucket: Bucket) -> dict[str, Any]:
        latency = dict(zip(LATENCY_COLUMNS, bucket.latency))
        return {"bucket_start": key[0], "tenant_id": key[1], "replica": self.replica, **bucket.counts, **latency}


def bucket_of(row: dict[str, Any]) -> Bucket:
    """A stored row (or a sum of rows) as a bucket."""
    return Bucket({name: int(row[name] or 0) for name in COUNTS}, [int(row[name] or 0) for name in LATENCY_COLUMNS])


def series(buckets: Iterable[tuple[datetime, Bucket]], since: datetime, until: datetime, step: int) -> list[tuple[datetime, Bucket]]:
    """The buckets summed into ``step``-second points from ``since`` to ``until``, empty points included."""
    points = {since + timedelta(seconds=step * i): Bucket() for i in range(int((until - since).total_seconds()) // step + 1)}
    for start, bucket in buckets:
        offset = int((start - since).total_seconds()) // step
        point = points.get(since + timedelta(seconds=step * offset))
        if point is not None:
            point.add(bucket)
    return sorted(points.items())
