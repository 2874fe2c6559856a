"""schedules: 10,000 schedules — the hub CPU the scheduler costs while none is due, and the lag from each tick to its action committed.

Idle: the hub's CPU over ``IDLE_SECONDS`` with no schedule, then again with 10,000 active schedules whose next
ticks are an hour away (goal: the difference, what the schedules cost, at most 1% of a core). Lag: the 10,000 are
then set going ``every 60s``, their first ticks spread evenly over a minute (about 167 ticks a second), each sending
a message that carries its tick's time to one of ``INBOXES`` agents. The lag is the hub's own measure,
``agora_schedule_lag_seconds`` (from a tick's time to its action's commit), read before and after ``FIRING_SECONDS``
(goal: p99 at most 1 s; p50 and p99 are the upper bounds of the histogram's buckets that hold them). Then the
inboxes are drained: ticks doubled (two messages for one tick) and ticks missed (due, no message) are counted (goal
0).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx

from ..bench import Bench, call_hub
from ..report import ValueRecord, at_most
from ..servers import Server, hub_server
from ..stores import StoreProvider

NAME = "schedules"
COUNT = 10_000
IDLE_SECONDS = 20.0
FIRING_SECONDS = 90.0
EVERY = 60  # seconds between a schedule's ticks
INBOXES = 20
TARGET_IDLE, TARGET_P99 = 0.01, 1.0


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    with hub_server(spec, "--no-local-node", "--schedule-min-interval", "1") as hub:
        admin = spec.admin_key
        inboxes = [call_hub(hub, admin, "/agora/agents/register", {"agent_name": f"bench-inbox-{n}"}) for n in range(INBOXES)]
        bench.step(f"{NAME}: the hub at idle without schedules, {IDLE_SECONDS:g} s")
        bare = _idle_cpu(hub)
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        bench.step(f"{NAME}: {COUNT:,} schedules, next ticks an hour away")
        made = _each(hub, admin, "/agora/schedules/create", [
            {"name": f"s{i:05d}", "trigger": f"every {EVERY}s", "start_at": later.isoformat(),
             "action": {"message": {"to_agent": inboxes[i % INBOXES]["agent_id"], "content": {"tick": "{{tick}}", "s": i}}}}
            for i in range(COUNT)
        ])  # fmt: skip
        bench.step(f"{NAME}: the hub at idle with {COUNT:,} schedules, {IDLE_SECONDS:g} s")
        loaded = _idle_cpu(hub)
        cost = max(0.0, loaded - bare)
        bench.add(ValueRecord(
            NAME, store.kind.value, f"the scheduler at idle with {COUNT:,} schedules: hub CPU, share of a core", round(cost * 100, 3), "%",
            at_most(cost, TARGET_IDLE, f"≤ {TARGET_IDLE:.0%} of a core"),
            notes=f"hub CPU {loaded:.2%} of a core with them, {bare:.2%} without ({IDLE_SECONDS:g} s each); made at {made:,.0f}/s",
        ))  # fmt: skip
        _lag(bench, store, hub, admin, inboxes, made)


def _idle_cpu(hub: Server) -> float:
    before, started = hub.cpu_seconds(), time.monotonic()
    time.sleep(IDLE_SECONDS)
    return (hub.cpu_seconds() - before) / (time.monotonic() - started)


def _each(hub: Server, key: str, path: str, bodies: list[dict[str, Any]]) -> float:
    """Every body sent to ``path`` (16 at a time); calls per second."""
    started = time.monotonic()
    with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=httpx.Limits(max_connections=16)) as client:

        def send(body: dict[str, Any]) -> None:
            client.post(path, json=body).raise_for_status()

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(send, bodies))
    return len(bodies) / (time.monotonic() - started)


def _lag(bench: Bench, store: StoreProvider, hub: Server, admin: str, inboxes: list[dict[str, Any]], rate: float) -> None:
    first = datetime.now(timezone.utc) + timedelta(seconds=10 + 3 * COUNT / rate)  # after the updates below are done
    spread = EVERY / COUNT
    bench.step(f"{NAME}: setting them going: first ticks from {first:%H:%M:%S}, one every {spread * 1000:g} ms")
    _each(hub, admin, "/agora/schedules/update", [
        {"schedule": f"s{i:05d}", "start_at": (first + timedelta(seconds=i * spread)).isoformat()} for i in range(COUNT)
    ])  # fmt: skip
    # Measured from the first tick, or — if setting them going outlasted it (some then started a minute later) — from
    # a minute on, when every schedule ticks on its place again.
    now = datetime.now(timezone.utc)
    start = first if now < first else first + timedelta(seconds=EVERY * (1 + (now - first).total_seconds() // EVERY))
    time.sleep(max(0.0, (start - datetime.now(timezone.utc)).total_seconds()))
    bench.step(f"{NAME}: {FIRING_SECONDS:g} s of ticks from {start:%H:%M:%S}")
    before = _lag_buckets(hub, admin)
    time.sleep(FIRING_SECONDS)
    ended = datetime.now(timezone.utc)
    after = _lag_buckets(hub, admin)
    fired = {bound: after[bound] - before.get(bound, 0) for bound in after}
    total = fired[float("inf")]
    p50, p99 = (next(bound for bound, count in sorted(fired.items()) if count >= q * total) for q in (0.5, 0.99))
    bench.step(f"{NAME}: draining the inboxes")
    messages = [m for inbox in inboxes for m in _drain(hub, inbox["agent_token"])]
    ticks = [(m["content"]["s"], m["content"]["tick"]) for m in messages]
    doubled = len(ticks) - len(set(ticks))
    last = ended - timedelta(seconds=2)
    due = {(i, first + timedelta(seconds=i * spread + k * EVERY)) for i in range(COUNT) for k in range(int((last - first).total_seconds() // EVERY) + 1)}
    due = {(i, tick) for i, tick in due if first + timedelta(seconds=i * spread) <= tick <= last and tick >= start}
    seen = {(i, datetime.fromisoformat(tick)) for i, tick in ticks}
    missed = len(due - seen)
    kind = store.kind.value
    bench.add(ValueRecord(NAME, kind, "tick to its action committed: p50 (bucket bound)", round(p50 * 1000, 1), "ms",
                          notes=f"{total:,.0f} ticks over {FIRING_SECONDS:g} s ({total / FIRING_SECONDS:,.0f}/s), agora_schedule_lag_seconds"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "tick to its action committed: p99 (bucket bound)", round(p99 * 1000, 1), "ms",
                          at_most(p99, TARGET_P99, f"≤ {TARGET_P99:g} s")))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "ticks doubled", doubled, "ticks", at_most(doubled, 0, "0"), notes=f"{len(messages):,} messages"))
    bench.add(ValueRecord(NAME, kind, "ticks missed (due, no message)", missed, "ticks", at_most(missed, 0, "0"), notes=f"{len(due):,} due"))


def _lag_buckets(hub: Server, key: str) -> dict[float, float]:
    """The lag histogram's cumulative buckets: upper bound (seconds) → ticks."""
    text = httpx.get(f"http://127.0.0.1:{hub.port}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=30).text
    buckets = {}
    for line in text.splitlines():
        if line.startswith("agora_schedule_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _drain(hub: Server, token: str) -> list[dict[str, Any]]:
    """Everything in an inbox, taken and acknowledged."""
    got: list[dict[str, Any]] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while batch := client.post("/agora/messaging/receive", json={"limit": 500}).json()["messages"]:
            client.post("/agora/messaging/ack", json={"message_ids": [m["message_id"] for m in batch]}).raise_for_status()
            got += batch
    return got
