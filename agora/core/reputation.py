"""A listing's reputation: its rating and what the hub measured of it itself — executions that succeeded, their p95
latency, its instances' uptime, buyers that kept their instances — in one figure from 0 to 100, kept on the listing by
a periodic job (every ``--reputation-seconds``) and shown with its inputs.

Each measured input starts from a prior counted as a few observations, as the rating does, so a listing's first
tasks neither make nor break it::

    reputation = 100 × (0.35·R + 0.25·S + 0.15·A + 0.15·L + 0.10·K)
    R = (rating − 1) / 4                                   the Bayesian rating (agora_sdk/wire/reviews.py)
    S = (completed + 10 × 0.9) / (finished + 10)           executions that succeeded
    A = (running + 1 h × 0.95) / (running + down + 1 h)    instances' uptime
    L = 1 / (1 + p95 / 5 s), 0.5 with no task measured     p95 from claim to completion, last 30 days
    K = (kept + 5 × 0.9) / (instances + 5)                 instances not terminated within their first hour

Reviews cannot move S, A, L or K: they are the hub's own records.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, select, update

from agora.store.ops import marketplace as market_ops
from agora.store.ops.dialect import one_of, seconds_between
from agora.store.schema import market_instances, market_listings, tasks
from agora_sdk.wire.marketplace import ReputationInputs

from . import billing
from .context import Hub

log = logging.getLogger("agora.reputation")

WEIGHTS = {"rating": 0.35, "success": 0.25, "availability": 0.15, "speed": 0.15, "kept": 0.10}
SUCCESS_PRIOR, SUCCESS_WEIGHT = 0.9, 10
AVAILABILITY_PRIOR, AVAILABILITY_WEIGHT = 0.95, 3_600_000_000  # one hour, in microseconds
SPEED_HALF_SECONDS, SPEED_PRIOR = 5.0, 0.5
KEPT_PRIOR, KEPT_WEIGHT = 0.9, 5
EARLY = timedelta(hours=1)
WINDOW = timedelta(days=30)
BATCH = 500  # listings a transaction


def score(inputs: ReputationInputs) -> float:
    parts = {
        "rating": (inputs.rating - 1) / 4,
        "success": (inputs.completed + SUCCESS_WEIGHT * SUCCESS_PRIOR) / (inputs.completed + inputs.failed + SUCCESS_WEIGHT),
        "availability": (inputs.running_seconds * 1e6 + AVAILABILITY_WEIGHT * AVAILABILITY_PRIOR)
        / ((inputs.running_seconds + inputs.down_seconds) * 1e6 + AVAILABILITY_WEIGHT),
        "speed": SPEED_PRIOR if inputs.p95_seconds is None else 1 / (1 + inputs.p95_seconds / SPEED_HALF_SECONDS),
        "kept": (inputs.instances - inputs.ended_early + KEPT_WEIGHT * KEPT_PRIOR) / (inputs.instances + KEPT_WEIGHT),
    }
    return round(100 * sum(WEIGHTS[name] * value for name, value in parts.items()), 2)


PRIOR = score(ReputationInputs(rating=3.0))  # a listing nobody ran or rated yet


def _p95(conn: Connection, ids: list[str], since: datetime) -> dict[str, float]:
    took = seconds_between(conn.dialect.name, tasks.c.started_at, tasks.c.finished_at)
    rows = conn.execute(
        select(market_instances.c.listing_id, took)
        .join(tasks, tasks.c.claimed_by == market_instances.c.agent_id)
        .where(one_of(conn.dialect.name, market_instances.c.listing_id, "ids"), tasks.c.status == "completed", tasks.c.finished_at >= since),
        {"ids": ids},
    ).all()
    durations: dict[str, list[float]] = defaultdict(list)
    for listing_id, seconds in rows:
        if seconds is not None:
            durations[listing_id].append(float(seconds))
    return {i: sorted(d)[max(0, math.ceil(0.95 * len(d)) - 1)] for i, d in durations.items()}


def _instances(conn: Connection, ids: list[str]) -> dict[str, tuple[int, int]]:
    """Per listing: its instances, and those stopped within their first hour (terminated by their buyer)."""
    rows = conn.execute(
        select(market_instances.c.listing_id, market_instances.c.status, market_instances.c.created_at, market_instances.c.stopped_at)
        .where(one_of(conn.dialect.name, market_instances.c.listing_id, "ids")),
        {"ids": ids},
    ).all()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for listing_id, status, created, stopped in rows:
        counts[listing_id][0] += 1
        counts[listing_id][1] += status == "stopped" and stopped is not None and stopped - created < EARLY
    return {i: (n, early) for i, (n, early) in counts.items()}


def refresh_batch(conn: Connection, after: str, now: datetime) -> str | None:
    """Reckon the reputation of the next ``BATCH`` listed listings after id ``after``; the last id (None: done)."""
    listings = conn.execute(
        select(market_listings.c.listing_id, market_listings.c.rating)
        .where(and_(market_listings.c.status == "listed", market_listings.c.listing_id > after))
        .order_by(market_listings.c.listing_id)
        .limit(BATCH)
    ).all()
    if not listings:
        return None
    ids = [r.listing_id for r in listings]
    figures = market_ops.performance(conn, ids)
    p95 = _p95(conn, ids, now - WINDOW)
    instances = _instances(conn, ids)
    for listing_id, rating in listings:
        f = figures[listing_id]
        up = {"running": f["running"], "down": f["down"]}
        for state, since in f["open"]:
            up[state] += billing.micros_between(since, now)
        count, early = instances.get(listing_id, (0, 0))
        inputs = ReputationInputs(
            rating=rating, completed=f["completed"], failed=f["failed"], p95_seconds=p95.get(listing_id),
            running_seconds=up["running"] / 1e6, down_seconds=up["down"] / 1e6, instances=count, ended_early=early, reckoned_at=now,
        )  # fmt: skip
        conn.execute(
            update(market_listings)
            .where(market_listings.c.listing_id == listing_id)
            .values(reputation=score(inputs), reputation_inputs=inputs.model_dump(mode="json"))
        )
    return ids[-1] if len(ids) == BATCH else None


async def refresh(hub: Hub) -> None:
    """Every listed listing's reputation, a batch a transaction (a periodic job: core/housekeeping.py)."""
    after: str | None = ""
    now = hub.clock.now()
    while after is not None:
        after = await hub.store.write(refresh_batch, after, now)
