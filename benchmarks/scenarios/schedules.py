"""schedules: 10,000 schedules — the hub CPU the scheduler costs while none is due, and the lag from each tick to its message reaching a waiting agent.

Idle: the hub's CPU over ``IDLE_SECONDS`` with no schedule, then again with 10,000 active schedules whose next
ticks are an hour away (goal: the difference, what the schedules cost, at most 1% of a core). Lag: the 10,000 are
then set going ``every 60s``, their first ticks spread evenly over a minute (about 167 ticks a second), each sending
a message that carries its tick's time to one agent that long-polls its inbox; for ``FIRING_SECONDS`` the benchmark
notes when each message arrives (goal: p99 of arrival minus tick at most 1 s). The delivery is in the figure: it is
an upper bound of the time to the action's commit. Ticks doubled (two messages for one tick) and ticks missed are
counted (goal 0).
"""

from __future__ import annotations

import statistics
import threading
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
TARGET_IDLE, TARGET_P99 = 0.01, 1.0


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    with hub_server(spec, "--no-local-node", "--schedule-min-interval", "1") as hub:
        admin = spec.admin_key
        inbox = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "bench-inbox"})
        bench.step(f"{NAME}: the hub at idle without schedules, {IDLE_SECONDS:g} s")
        bare = _idle_cpu(hub)
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        bench.step(f"{NAME}: {COUNT:,} schedules, next ticks an hour away")
        made = _each(hub, admin, "/agora/schedules/create", [
            {"name": f"s{i:05d}", "trigger": f"every {EVERY}s", "start_at": later.isoformat(),
             "action": {"message": {"to_agent": inbox["agent_id"], "content": {"tick": "{{tick}}", "s": i}}}}
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
        _lag(bench, store, hub, admin, inbox, made)


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


def _lag(bench: Bench, store: StoreProvider, hub: Server, admin: str, inbox: dict[str, Any], rate: float) -> None:
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
    arrivals: list[tuple[float, dict[str, Any]]] = []
    stop = threading.Event()
    reader = threading.Thread(target=_receive, args=(hub, inbox["agent_token"], arrivals, stop))
    reader.start()
    wait = (start - datetime.now(timezone.utc)).total_seconds()
    bench.step(f"{NAME}: {FIRING_SECONDS:g} s of ticks (measured from {start:%H:%M:%S}, in {wait:.0f} s)")
    time.sleep(max(0.0, wait) + FIRING_SECONDS)
    ended = datetime.now(timezone.utc)
    stop.set()
    reader.join(30)
    measured = [(at, m) for at, m in arrivals if datetime.fromisoformat(m["content"]["tick"]) >= start]
    lags = sorted(at - datetime.fromisoformat(m["content"]["tick"]).timestamp() for at, m in measured)
    ticks = [(m["content"]["s"], m["content"]["tick"]) for _, m in arrivals]
    doubled = len(ticks) - len(set(ticks))
    due = [first + timedelta(seconds=i * spread + k * EVERY) for i in range(COUNT) for k in range(1 + int(FIRING_SECONDS * 2 // EVERY) + 2)]
    expected = sum(1 for tick in due if start <= tick <= ended - timedelta(seconds=2))
    missed = max(0, expected - len({t for t in ticks if datetime.fromisoformat(t[1]) >= start}))
    p50, p99 = (statistics.quantiles(lags, n=100)[i] for i in (49, 98)) if len(lags) >= 100 else (float("nan"),) * 2
    kind = store.kind.value
    bench.add(ValueRecord(NAME, kind, "tick to its message at a waiting agent: p50", round(p50 * 1000, 1), "ms",
                          notes=f"{len(lags):,} ticks over {FIRING_SECONDS:g} s ({len(lags) / FIRING_SECONDS:,.0f}/s)"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "tick to its message at a waiting agent: p99", round(p99 * 1000, 1), "ms",
                          at_most(p99, TARGET_P99, f"≤ {TARGET_P99:g} s"), notes=f"max {max(lags, default=0) * 1000:,.0f} ms"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "ticks doubled", doubled, "ticks", at_most(doubled, 0, "0")))
    bench.add(ValueRecord(NAME, kind, "ticks missed (due 2 s before the end, no message)", missed, "ticks", at_most(missed, 0, "0"),
                          notes=f"{expected:,} due"))  # fmt: skip


def _receive(hub: Server, token: str, arrivals: list[tuple[float, dict[str, Any]]], stop: threading.Event) -> None:
    """Long-poll the inbox, noting when each message arrives, acknowledging as it goes."""
    with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        while not stop.is_set():
            got = client.post("/agora/messaging/receive", json={"limit": 500, "wait": 1}).json()["messages"]
            at = time.time()
            arrivals += [(at, m) for m in got]
            if got:
                client.post("/agora/messaging/ack", json={"message_ids": [m["message_id"] for m in got]}).raise_for_status()
