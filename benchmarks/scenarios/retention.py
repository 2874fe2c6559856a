"""retention: sends' latency while the hub's retention job deletes 1,000,000 expired messages, against the same sends
before it starts (p99 within 2×), and the rows it deletes per second.

The store is built as ``storecopy`` builds it (the store's own send operation, 100 agents) but eight days ago, and
every delivery acked then: with the default seven days of retention each message and its delivery are due, two rows
each. The hub starts on it; its retention job first runs a minute after start. Sends go at a steady rate from the
start, so the minute before the purge is the unloaded baseline of the same run; the purge is seen through the hub's
``agora_retention_purged_total`` counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import statistics
import time
from datetime import datetime, timedelta, timezone

import httpx

from ..bench import Bench, call_hub
from ..http import Connection, build_request
from ..report import ValueRecord, at_most
from ..servers import HubSpec, Server, hub_server
from ..stores import StoreProvider
from .storecopy import agora, build_store

NAME = "retention"
RATE = 200  # sends a second, open loop
CONNECTIONS = 8
BASELINE_SKIP = 5.0  # seconds after start left out of the baseline (first requests warm the hub up)
TARGET_P99_RATIO = 2.0
PURGED = 'agora_retention_purged_total{kind="messages"}'


def _ack_all(spec: HubSpec, at: datetime) -> None:
    """Every delivery acked at ``at``."""
    if spec.database_url is None:
        with sqlite3.connect(spec.data_dir / "agora.db") as conn:
            conn.execute("UPDATE inbox SET acked_at = ?", (at.strftime("%Y-%m-%d %H:%M:%S.%f"),))
        return

    async def update() -> None:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(spec.database_url)
        try:
            await conn.execute("UPDATE inbox SET acked_at = $1", at)
        finally:
            await conn.close()

    asyncio.run(update())


def _purged(hub: Server, admin: str) -> float:
    rows = httpx.get(f"http://127.0.0.1:{hub.port}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10).text.splitlines()
    return sum(float(r.rpartition(" ")[2]) for r in rows if r.startswith(PURGED + " "))


async def _load(hub: Server, admin: str, sender: str, receiver: str, expected: int) -> tuple[list[tuple[float, float]], float, float, float]:
    """Sends at RATE until the purge has ended; (start, latency ms) of each, when the purge started and ended (time
    of the first and last poll that saw the counter move), and the rows it removed."""
    headers = {"Authorization": f"Bearer {sender}", "Content-Type": "application/json"}
    body = json.dumps({"to_agent": receiver, "content": {"text": "ping"}}).encode()
    request = build_request("POST", "/agora/messaging/send", hub.port, headers, body)
    sends: list[tuple[float, float]] = []
    stop = asyncio.Event()
    idle: asyncio.Queue[Connection] = asyncio.Queue()

    async def one(at: float) -> None:
        connection = await idle.get()
        started = time.perf_counter()
        status, answer = await connection.send(request)
        idle.put_nowait(connection)
        if status != 200:
            raise RuntimeError(f"send answered {status}: {answer[:200]!r}")
        sends.append((at, (time.perf_counter() - started) * 1000))

    async def sender_loop() -> None:
        begin, n, running = time.perf_counter(), 0, set()
        while not stop.is_set():
            await asyncio.sleep(max(0.0, begin + n / RATE - time.perf_counter()))
            task = asyncio.create_task(one(begin + n / RATE))
            running.add(task)
            task.add_done_callback(running.discard)
            n += 1
        await asyncio.gather(*running)

    first = last = 0.0
    removed = 0.0
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as group:
        for _ in range(CONNECTIONS):
            idle.put_nowait(await stack.enter_async_context(Connection(hub.port)))
        group.create_task(sender_loop())
        deadline = time.perf_counter() + 900
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.5)
            now, seen = time.perf_counter(), await asyncio.to_thread(_purged, hub, admin)
            if seen > removed:
                first, last, removed = first or now, now, seen
            elif removed and (removed >= expected or now - last > 10):
                break
        stop.set()
    return sends, first, last, removed


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    messages = bench.profile.store_messages
    kind = store.kind.value
    spec = store.fresh()
    old = datetime.now(timezone.utc) - timedelta(days=8)
    bench.step(f"{NAME}: building a store of {messages:,} messages sent eight days ago, every delivery acked then")
    if spec.database_url is None:
        build_store(bench, spec.data_dir / "agora.db", messages, at=old)
    else:
        built = spec.data_dir / "build" / "agora.db"
        build_store(bench, built, messages, at=old)
        agora("store", "copy", "--from", f"sqlite:///{built}", "--to", spec.database_url)
    _ack_all(spec, old)
    with hub_server(spec) as hub:
        admin = spec.admin_key
        sender = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "retention-sender"})
        receiver = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "retention-receiver"})
        bench.step(f"{NAME}: {RATE} sends/s while the hub starts its retention job (a minute after start) and runs it")
        sends, first, last, removed = asyncio.run(_load(hub, admin, sender["agent_token"], receiver["agent_id"], 2 * messages))
    start = sends[0][0] if sends else 0.0
    before = [ms for at, ms in sends if start + BASELINE_SKIP <= at < first - 0.5]
    during = [ms for at, ms in sends if first - 0.5 <= at <= last]
    if len(before) < 100 or len(during) < 100:
        raise RuntimeError(f"too few sends to compare: {len(before)} before the purge, {len(during)} during it")
    p99 = {name: statistics.quantiles(values, n=100)[98] for name, values in (("before", before), ("during", during))}
    p50 = {name: statistics.median(values) for name, values in (("before", before), ("during", during))}
    ratio = p99["during"] / p99["before"]
    seconds = max(last - first, 0.5)
    bench.add(ValueRecord(NAME, kind, f"send p99 while {removed:,.0f} rows are purged, against before", ratio, "×",
                          at_most(ratio, TARGET_P99_RATIO, f"≤ {TARGET_P99_RATIO:g}×"),
                          f"p99 {p99['during']:.2f} ms during, {p99['before']:.2f} ms before (p50 {p50['during']:.2f} / "
                          f"{p50['before']:.2f} ms); {len(during):,} and {len(before):,} sends at {RATE}/s"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, f"retention purge of {messages:,} acked messages (and their deliveries)", removed / seconds, "rows/s",
                          notes=f"{removed:,.0f} rows in {seconds:.1f} s, sends going on"))  # fmt: skip
