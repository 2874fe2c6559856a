"""ratings: search and discover p99 among 100,000 listings with rating and reputation filters and sorting, against the same searches without them.

100,000 synthetic listings (``search_eval/synthetic.py``; quick: 20,000) are written through the store's own publish
operation, then given ratings as reviews would leave them: a seeded share has none, the others from 1 to 60 reviews
around an average of their own, so the stored Bayesian rating, count and distribution are those
``agora/store/ops/reviews.py`` keeps, and a reputation spread over 30 to 98. A hub is started on them (the
default lexical search: no embedder) and each arm is timed over one keep-alive connection, arms interleaved so a
slow spell on the machine falls on all of them:

- search: the 100 judged queries of ``search_eval/queries.json`` (listings, limit 10); alone (the base), with
  ``min_rating`` 4, with ``sort=rating``, with ``min_reputation`` 70 and ``sort=reputation``;
- discover: a page of 50 of each category; by name (the base), with ``min_rating`` 4, by rating, by reputation
  above 70.

Each filtered arm's p99 is set against its base's p99 from the same rounds (goal: at most 1.2×).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

from sqlalchemy import Connection as SqlConnection
from sqlalchemy import bindparam, select, update

from agora.store import open_store
from agora.store.schema import market_listings
from agora_sdk.wire.reviews import bayesian

from ..bench import DEFAULT, Bench
from ..http import Connection, build_request
from ..load import percentile
from ..report import ValueRecord, at_most
from ..search_eval import synthetic
from ..search_seed import SEARCH_PATH, write_listings
from ..servers import HubSpec, hub_server
from ..stores import StoreProvider
from .search import DATA, progress_bar

NAME = "ratings"
SIZE, QUICK_SIZE = 100_000, 20_000
ROUNDS, QUICK_ROUNDS = 5, 2  # timed passes over every arm (after one untimed pass)
TARGET_RATIO = 1.2  # a filtered or sorted arm's p99 over its base's
UNRATED_SHARE = 0.4
RATE_BATCH = 5_000
DISCOVER_PATH = "/agora/marketplace/discover"
SEARCHES = {
    "search": {},
    "search, min_rating 4": {"min_rating": 4},
    "search, best rated first": {"sort": "rating"},
    "search, reputation ≥ 70, most reputable first": {"min_reputation": 70, "sort": "reputation"},
}
DISCOVERIES = {
    "discover by name": {},
    "discover, min_rating 4": {"min_rating": 4, "sort": "rating"},
    "discover, best rated first": {"sort": "rating"},
    "discover, reputation ≥ 70, most reputable first": {"min_reputation": 70, "sort": "reputation"},
}


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    quick = bench.profile.load_seconds < DEFAULT.load_seconds
    size, rounds = (QUICK_SIZE, QUICK_ROUNDS) if quick else (SIZE, ROUNDS)
    kind = store.kind.value
    spec = store.fresh()
    listings = synthetic.generate(size)
    with progress_bar(bench, f"{NAME}: writing {size:,} listings through the store's publish operation", size) as done:
        seconds = asyncio.run(write_listings(spec, listings, done))
    bench.add(ValueRecord(NAME, kind, f"{size:,} listings written through the store (no hub)", size / seconds, "listings/s"))
    rated = asyncio.run(_rate(spec))
    queries = [q["query"] for q in json.loads((DATA / "queries.json").read_text())]
    categories = sorted({entry["category"] for entry in listings})
    requests = {
        **{arm: [_post(SEARCH_PATH, {"q": q, "kinds": ["listing"], "limit": 10, **extra}) for q in queries] for arm, extra in SEARCHES.items()},
        **{arm: [_post(DISCOVER_PATH, {"category": c, "limit": 50, **extra}) for c in categories] for arm, extra in DISCOVERIES.items()},
    }  # fmt: skip
    with hub_server(spec, "--no-local-node") as hub:
        bench.step(f"{NAME}: {len(requests)} arms × {rounds} rounds among {size:,} listings ({rated:,} rated), one connection")
        load_before = os.getloadavg()[0]
        timings = asyncio.run(_time(hub.port, spec.admin_key, requests, rounds))
    load = f"machine load (1 min) {load_before:.1f} → {os.getloadavg()[0]:.1f}"
    for family in (SEARCHES, DISCOVERIES):
        base, *others = family
        base_p99 = percentile(timings[base], 99)
        _record(bench, kind, size, base, timings[base], None, load)
        for arm in others:
            ratio = percentile(timings[arm], 99) / base_p99
            _record(bench, kind, size, arm, timings[arm], (base, ratio), load)


def _post(path: str, body: dict[str, Any]) -> tuple[str, bytes]:
    return path, json.dumps(body).encode()


async def _rate(spec: HubSpec) -> int:
    """Ratings and reputations on every listing, as reviews and the reputation job would leave them; returns how
    many listings are rated."""
    rng = random.Random(58)
    store = open_store(spec.database_url, spec.data_dir)
    await store.start()
    try:
        ids = await store.read(lambda conn: list(conn.execute(select(market_listings.c.listing_id).order_by(market_listings.c.listing_id)).scalars()))
        rows = [_standing(rng, listing_id) for listing_id in ids]
        for first in range(0, len(rows), RATE_BATCH):
            await store.write(_write_standing, rows[first : first + RATE_BATCH])
        return sum(1 for r in rows if r["count"])
    finally:
        await store.close()


def _standing(rng: random.Random, listing_id: str) -> dict[str, Any]:
    count = 0 if rng.random() < UNRATED_SHARE else rng.randint(1, 60)
    mean = rng.uniform(1.5, 5.0)
    stars = [min(5, max(1, round(rng.gauss(mean, 0.8)))) for _ in range(count)]
    distribution = [stars.count(n) for n in range(1, 6)]
    return {
        "lid": listing_id, "rating": bayesian(sum(stars), count), "count": count, "total": sum(stars), "distribution": distribution,
        "reputation": round(rng.uniform(30, 98), 2),
    }  # fmt: skip


def _write_standing(conn: SqlConnection, rows: list[dict[str, Any]]) -> None:
    columns = market_listings.c
    stmt = update(market_listings).where(columns.listing_id == bindparam("lid")).values(
        rating=bindparam("rating"), rating_count=bindparam("count"), rating_total=bindparam("total"),
        rating_distribution=bindparam("distribution"), reputation=bindparam("reputation"),
    )  # fmt: skip
    conn.execute(stmt, rows)


async def _time(port: int, key: str, requests: dict[str, list[tuple[str, bytes]]], rounds: int) -> dict[str, list[float]]:
    """Every arm's requests over one keep-alive connection, the arms interleaved request by request: one untimed
    pass, then ``rounds`` timed ones; each arm's round trips in ms, sorted."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    raw = {arm: [build_request("POST", path, port, headers, body) for path, body in reqs] for arm, reqs in requests.items()}
    timings: dict[str, list[float]] = {arm: [] for arm in raw}
    async with Connection(port) as conn:
        for timed in [False] + [True] * rounds:
            for i in range(max(len(r) for r in raw.values())):
                for arm, reqs in raw.items():
                    if i >= len(reqs):
                        continue
                    started = time.perf_counter()
                    status, body = await conn.send(reqs[i])
                    elapsed = (time.perf_counter() - started) * 1000
                    if status != 200:
                        raise RuntimeError(f"{arm} answered {status}: {body[:300]!r}")
                    if timed:
                        timings[arm].append(elapsed)
    return {arm: sorted(t) for arm, t in timings.items()}


def _record(bench: Bench, kind: str, size: int, arm: str, timings: list[float], against: tuple[str, float] | None, load: str) -> None:
    p99 = percentile(timings, 99)
    notes = f"p50 {percentile(timings, 50):.1f} ms; {len(timings)} requests; {load}"
    if against is None:
        bench.add(ValueRecord(NAME, kind, f"{arm} among {size:,} listings, p99 (the base)", p99, "ms", notes=notes))
        return
    base, ratio = against
    bench.add(ValueRecord(NAME, kind, f"{arm} among {size:,} listings, p99", p99, "ms", notes=notes))
    bench.add(ValueRecord(NAME, kind, f"{arm}: p99 over '{base}'", ratio, "×", at_most(ratio, TARGET_RATIO, f"≤ {TARGET_RATIO:g}× the same run's {base}")))
