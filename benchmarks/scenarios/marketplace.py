"""marketplace: instance create → registered and ready; 50 instances on one hosting node; billing error (must be 0)."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, select

from agora.store import open_store
from agora.store.schema import market_usage

from ..bench import Bench
from ..report import ValueRecord, at_most
from ..servers import ROOT, cpu_seconds, hub_server, memory_kb
from ..stores import StoreProvider

NAME = "marketplace"
EXAMPLE = ROOT / "examples" / "marketplace_agent"
CONCURRENT = 50
SEQUENTIAL = 20  # quick: 8
WATCH_SECONDS = 20.0  # quick: 6
PRICING = {"model": "hybrid", "price": "0.0013", "base_fee": "0.37", "currency": "USD"}  # awkward numbers on purpose


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    quick = bench.profile.load_seconds < 5
    sequential, watch = (8, 6.0) if quick else (SEQUENTIAL, WATCH_SECONDS)
    spec = store.fresh()
    kind = store.kind.value
    with tempfile.TemporaryDirectory(prefix="agora-bench-node-") as tmp, hub_server(spec, "--no-local-node") as hub:
        url = f"http://127.0.0.1:{hub.port}"
        node = _node(url, spec.admin_key, Path(tmp))
        try:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {spec.admin_key}"}, timeout=120) as admin:
                _until(lambda: any(n["status"] == "online" for n in admin.post("/agora/hosting/list_nodes", json={}).json()["nodes"]), 30)
                listing = _publish(admin)
                bench.step(f"{NAME}: ceiling — the example agent started by hand (same interpreter, same package) until it has registered")
                by_hand = [_by_hand(admin, url, n) for n in range(5)]
                bench.step(f"{NAME}: {sequential} instances created one after the other, each until its agent is registered and ready")
                ready = [_create_ready(admin, listing) for _ in range(sequential)]
                latencies = [r[1] * 1000 for r in ready]
                bench.step(f"{NAME}: {CONCURRENT} instances on one node at once, then {watch:g} s of watching hub and node")
                more = asyncio.run(_create_many(url, spec.admin_key, listing, CONCURRENT - sequential))
                ids = [r[0] for r in ready] + more
                usage = _watch(admin, hub.proc.pid, node.pid, ids, watch)  # type: ignore[union-attr]
                bench.step(f"{NAME}: requests on every instance, pause and resume half, terminate all; bills against exact arithmetic")
                sent = _work(admin, ids)
                finals = {i: admin.delete(f"/marketplace/instances/{i}").json() for i in ids}
        finally:
            node.terminate()
            node.wait(30)
        errors, mismatched = asyncio.run(_billing_errors(spec.database_url, spec.data_dir, finals, sent))
    p50, p99, ceiling = statistics.median(latencies), _p99(latencies[1:]), statistics.median(by_hand)
    bench.add(ValueRecord(NAME, kind, "ceiling: the agent process started by hand → registered, median of 5", ceiling, "ms"))
    bench.add(ValueRecord(NAME, kind, "instance create → registered and ready, p50", p50, "ms",
                          notes=f"{p50 / ceiling:.2f}× the ceiling; p99 {p99:.0f} ms over {len(latencies) - 1} instances of a built listing (the first, which builds: {latencies[0]:.0f} ms)"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, f"{CONCURRENT} running instances: hub CPU", usage["hub_cpu"], "%", notes=f"hub RSS {usage['hub_rss']:.0f} MiB"))
    bench.add(ValueRecord(NAME, kind, f"{CONCURRENT} running instances: node CPU", usage["node_cpu"], "%",
                          notes=f"node RSS {usage['node_rss']:.0f} MiB; the {CONCURRENT} instances together {usage['instances_cpu']:.1f}% CPU, {usage['instances_rss']:.0f} MiB"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, "billing error against the exact expected cost (sum over instances)", float(errors), "USD",
                          at_most(float(errors), 0.0, "= 0"), f"{len(finals)} final bills, {mismatched} request counts off"))  # fmt: skip


def _node(url: str, key: str, data_dir: Path) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "agora", "host", "--hub", url, "--key", key, "--name", "bench", "--capacity-cpu", "64",
            "--capacity-mem", "65536", "--sample-interval", "2", "--data-dir", str(data_dir / "node")]  # fmt: skip
    return subprocess.Popen(args, stdout=open(data_dir / "node.log", "wb"), stderr=subprocess.STDOUT, cwd=ROOT)


def _publish(admin: httpx.Client) -> str:
    body = json.loads((EXAMPLE / "listing.json").read_text())
    body.update(agent_name="bench-calc", pricing=PRICING, max_instances=1000)
    body["repository"]["url"] = str(EXAMPLE)
    body["host_requirements"] = {"min_memory_mb": 64, "min_cpu_cores": 0.1}
    return str(admin.post("/marketplace/agents", json=body).json()["listing_id"])


def _by_hand(admin: httpx.Client, url: str, n: int) -> float:
    """The agent process alone: what any instance start costs before the hub and the node add theirs."""
    name = f"by-hand-{n}"
    registered = admin.post("/agora/agents/register", json={"agent_name": name}).json()
    env = {"PATH": str(Path(sys.executable).parent), "AGORA_URL": url, "AGORA_API_KEY": registered["agent_token"], "AGORA_AGENT_NAME": name}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "agent.py"], cwd=EXAMPLE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _until(lambda: admin.get(f"/agents/{registered['agent_id']}").json()["last_heartbeat"] is not None, 30, 0.01)
        return (time.perf_counter() - started) * 1000
    finally:
        proc.terminate()
        proc.wait(10)


def _ready(admin: httpx.Client, instance_id: str) -> bool:
    got = admin.get(f"/marketplace/instances/{instance_id}").json()
    if got["status"] not in ("starting", "running"):
        raise RuntimeError(f"instance {instance_id} is {got['status']}: {got['health_status']['last_error']}")
    return got["status"] == "running" and got["health_status"]["last_heartbeat"] is not None


def _create_ready(admin: httpx.Client, listing: str) -> tuple[str, float]:
    started = time.perf_counter()
    instance_id = admin.post("/marketplace/instances", json={"agent_id": listing}).json()["instance_id"]
    _until(lambda: _ready(admin, instance_id), 60, 0.01)
    return instance_id, time.perf_counter() - started


async def _create_many(url: str, key: str, listing: str, count: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        made = await asyncio.gather(*(client.post("/marketplace/instances", json={"agent_id": listing}) for _ in range(count)))
        ids = [m.json()["instance_id"] for m in made]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=120) as admin:
        _until(lambda: all(_ready(admin, i) for i in ids), 180, 0.5)
    return ids


def _watch(admin: httpx.Client, hub_pid: int, node_pid: int, ids: list[str], seconds: float) -> dict[str, float]:
    pids = [admin.get(f"/marketplace/instances/{i}").json()["pid"] for i in ids]
    before = (cpu_seconds(hub_pid), cpu_seconds(node_pid), sum(cpu_seconds(p) for p in pids))
    time.sleep(seconds)
    after = (cpu_seconds(hub_pid), cpu_seconds(node_pid), sum(cpu_seconds(p) for p in pids))
    percent = [100 * (b - a) / seconds for a, b in zip(before, after, strict=True)]
    return {
        "hub_cpu": percent[0], "node_cpu": percent[1], "instances_cpu": percent[2],
        "hub_rss": memory_kb(hub_pid)["VmRSS"] / 1024, "node_rss": memory_kb(node_pid)["VmRSS"] / 1024,
        "instances_rss": sum(memory_kb(p)["VmRSS"] for p in pids) / 1024,
    }  # fmt: skip


def _work(admin: httpx.Client, ids: list[str]) -> dict[str, int]:
    """A few requests on every instance (a different number each), half of them paused a while in between."""
    sent = {}
    for n, instance_id in enumerate(ids):
        count = 1 + n % 4
        for _ in range(count):
            done = admin.post(f"/marketplace/instances/{instance_id}/execute", json={"endpoint": "add", "parameters": {"numbers": [n, 1]}}).json()
            assert done["status"] == "completed", done
        sent[instance_id] = count
        if n % 2:
            admin.post(f"/marketplace/instances/{instance_id}/pause")
    time.sleep(1.0)
    for instance_id in ids[1::2]:
        admin.post(f"/marketplace/instances/{instance_id}/resume")
    return sent


async def _billing_errors(database_url: str | None, data_dir: Path, finals: dict[str, Any], sent: dict[str, int]) -> tuple[Decimal, int]:
    """Sum over instances of |final bill − exact cost|, the exact cost made with fractions from the stored usage periods
    (running time only) and the requests the benchmark itself sent; and how many request counts differ from it."""
    store = open_store(database_url, data_dir)
    await store.start()
    try:
        rows = await store.read(lambda conn: _running_micros(conn, list(finals)))
    finally:
        await store.close()
    error, mismatched = Decimal(0), 0
    for instance_id, final in finals.items():
        hours = Fraction(rows.get(instance_id, 0), 3_600_000_000)
        exact = Fraction(PRICING["base_fee"]) * hours, Fraction(PRICING["price"]) * sent[instance_id]
        expected = sum((_round(part) for part in exact), Decimal(0))
        error += abs(Decimal(final["billing_info"]["cost"]["total_cost"]) - expected)
        mismatched += final["billing_info"]["requests"] != sent[instance_id]
    return error, mismatched


def _running_micros(conn: Connection, ids: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for instance_id, micros in conn.execute(select(market_usage.c.instance_id, market_usage.c.micros).where(
        market_usage.c.instance_id.in_(ids), market_usage.c.state == "running"
    )):  # fmt: skip
        totals[instance_id] = totals.get(instance_id, 0) + micros
    return totals


def _round(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _until(condition: Any, timeout: float, poll: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not done within {timeout:g} s")
        time.sleep(poll)


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]
