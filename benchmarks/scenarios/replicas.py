"""replicas: 1, 2 and 3 hubs on one PostgreSQL, woken through Redis: throughput per replica, and where the CPU goes.

Each count of replicas gets a fresh database. Two workloads: single sends over HTTP (the connections dealt out over
the replicas) and the one-task cycle (8 workers, claim + update per task, spread over the replicas). Beside each
throughput the CPU of the run is split between the hubs, PostgreSQL, Redis and the rest of the machine (the load
generators), per operation: the inputs of docs/capacity.md's model, re-measured. On a machine of few cores the
replicas share the cores with the database and the generators, so aggregate throughput shows where the CPU goes
rather than how far replicas scale; the per-operation costs are what carry over to a bigger machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import redis
import websockets

from .. import send_floor
from ..bench import Bench, call_hub, hub_request
from ..load import PythonLoad
from ..report import ValueRecord
from ..servers import HubSpec, Server, hub_server
from ..stores import StoreKind, StoreProvider
from .send import _body
from .tasks import WORKERS, _assign, client_result, task_client

NAME = "replicas"
REPLICAS = (1, 2, 3)
PRESENCE_SECONDS = 1.0  # how often a connected agent's presence is written, in the idle-agents run (default: 30 s)
REDIS_URL = os.environ.get("AGORA_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
_TICK = os.sysconf("SC_CLK_TCK")


def _process_cpu(name: str) -> float:
    """CPU seconds (user + system) of every process named ``name``."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            if comm == name:
                total += int(rest[11]) + int(rest[12])
    return total / _TICK


def _machine_busy() -> float:
    """CPU seconds every core of the machine spent busy (not idle, not waiting for I/O) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / _TICK


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far: by the hubs, PostgreSQL, Redis, and the whole machine."""

    hubs: float
    database: float
    redis: float
    machine: float

    @staticmethod
    def now(hubs: list[Server]) -> Cpu:
        return Cpu(sum(h.cpu_seconds() for h in hubs), _process_cpu("postgres"), _process_cpu("redis-server"), _machine_busy())

    def __sub__(self, before: Cpu) -> Cpu:
        return Cpu(self.hubs - before.hubs, self.database - before.database, self.redis - before.redis, self.machine - before.machine)


def _split(cpu: Cpu, operations: int, seconds: float) -> str:
    """Where the run's CPU went, per operation and as a share of the machine's busy time."""

    def per_op(part: float) -> float:
        return part * 1e6 / max(1, operations)

    def share(part: float) -> float:
        return part / cpu.machine if cpu.machine else 0.0

    other = cpu.machine - cpu.hubs - cpu.database - cpu.redis
    return (
        f"CPU per op: hubs {per_op(cpu.hubs):.0f} µs, PostgreSQL {per_op(cpu.database):.0f} µs, Redis {per_op(cpu.redis):.0f} µs; "
        f"machine {cpu.machine / seconds:.2f} cores busy: hubs {share(cpu.hubs):.0%}, PostgreSQL {share(cpu.database):.0%}, "
        f"Redis {share(cpu.redis):.0%}, generators and the rest {share(other):.0%}"
    )


def _record(
    bench: Bench, workload: str, replicas: int, rate: float, single: float | None, cpu: Cpu, operations: int, seconds: float, note: str = ""
) -> None:
    scale = f"; {rate / single:.2f}× one replica" if single else ""
    bench.add(ValueRecord(NAME, "postgres", f"{workload}, {replicas} replica(s): all of them", rate, "/s",
                          notes=f"{rate / replicas:,.0f}/s per replica{scale}; {_split(cpu, operations, seconds)}{note}"))  # fmt: skip
    for part, seconds_used in (("hubs", cpu.hubs), ("PostgreSQL", cpu.database)):
        bench.add(ValueRecord(NAME, "postgres", f"{workload}, {replicas} replica(s): {part} CPU per operation", seconds_used * 1e6 / max(1, operations), "µs"))


def _sends(bench: Bench, hubs: list[Server], admin: str, replicas: int, single: float | None) -> float:
    sender = call_hub(hubs[0], admin, "/agora/agents/register", {"agent_name": "bench-sender"})
    receiver = call_hub(hubs[0], admin, "/agora/agents/register", {"agent_name": "bench-receiver"})
    message = {"to_agent": receiver["agent_id"], "content": {"text": "hello", "n": 1}, "message_type": "info"}
    request = replace(
        hub_request(hubs[0], sender["agent_token"], "/agora/messaging/send", _body(message)), spread=tuple(h.port for h in hubs[1:])
    )
    bench.step(f"{NAME}: single sends over {replicas} replica(s), {bench.throughput.label}")
    before = Cpu.now(hubs)
    result = PythonLoad().run(request, bench.throughput)
    cpu = Cpu.now(hubs) - before
    if result.errors:
        raise RuntimeError(f"{result.errors} sends failed over {replicas} replica(s)")
    _record(bench, "single send", replicas, result.rps, single, cpu, result.requests, result.seconds)
    return result.rps


def _task_cycle(bench: Bench, hubs: list[Server], admin: str, replicas: int, single: float | None, tmp: Path) -> float:
    count = 2_000 if bench.profile.load_seconds < 5 else 10_000
    tokens = [call_hub(hubs[0], admin, "/agora/agents/register", {"agent_name": f"worker-{i}", "capabilities": ["work"]})["agent_token"] for i in range(WORKERS)]
    asyncio.run(_assign(hubs[0].port, admin, count))
    bench.step(f"{NAME}: {WORKERS} workers over {replicas} replica(s) claim and complete {count:,} tasks (claim + update per task)")
    clients = []
    for r, hub in enumerate(hubs):
        mine = tokens[r::replicas]
        (tmp / f"tokens-{r}.txt").write_text("\n".join(mine))
        quota = count * len(mine) // WORKERS + (count * len(mine) % WORKERS if r == 0 else 0)
        clients.append((task_client("workers", str(hub.port), str(tmp / f"tokens-{r}.txt"), str(quota), str(bench.profile.load_seconds * 4), "1", str(tmp / f"out-{r}.json")), tmp / f"out-{r}.json"))
    before, started = Cpu.now(hubs), time.time()
    results = [client_result(proc, out) for proc, out in clients]
    cpu = Cpu.now(hubs) - before
    done = {t for r in results for t in r["completed"]}
    first_start = min(r["last_completed_at"] - r["span_seconds"] for r in results)
    seconds = max(r["last_completed_at"] for r in results) - max(first_start, started)
    # A slow machine may not finish them all within the workers' time: the rate is of those done, and says so.
    note = f"; only {len(done):,} of {count:,} tasks done within the workers' {bench.profile.load_seconds * 4} s" if len(done) < count else ""
    rate = len(done) / seconds
    _record(bench, "one-task cycle", replicas, rate, single, cpu, len(done), seconds, note)
    return rate


async def _hold(port: int, tokens: list[str], seconds: float, hub: Server) -> tuple[float, Cpu, Cpu]:
    """Hold a live stream open for each agent token for ``seconds``: (the hub's resident KiB before they opened,
    the CPU used so far once they are all open, and once the time is up)."""
    rss = hub.memory_kb()["VmRSS"]
    async with contextlib.AsyncExitStack() as stack:
        for token in tokens:
            ws = await stack.enter_async_context(
                websockets.connect(f"ws://127.0.0.1:{port}/ws", additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=30)
            )
            await ws.recv()  # ready
        opened = Cpu.now([hub])
        await asyncio.sleep(seconds)
        return rss, opened, Cpu.now([hub])


def _idle_agents(bench: Bench, store: StoreProvider) -> None:
    """What a connected agent that does nothing costs: the hub's memory per live stream, and its presence writes
    (one per agent every ``offline_after / 3`` seconds, 30 s by default: here every second, to measure them)."""
    count = 300 if bench.profile.load_seconds < 5 else 1_000
    spec = store.fresh()
    with hub_server(spec, "--offline-after", str(PRESENCE_SECONDS * 3)) as hub:
        tokens = [call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": f"idle-{i}"})["agent_token"] for i in range(count)]
        seconds = bench.profile.load_seconds * 2
        bench.step(f"{NAME}: {count:,} agents hold their live stream open on one replica for {seconds:g}s (presence every {PRESENCE_SECONDS:g}s)")
        rss_before, opened, closed = asyncio.run(_hold(hub.port, tokens, seconds, hub))
        rss_after = hub.memory_kb()["VmRSS"]
    cpu = closed - opened
    touches = count * seconds / PRESENCE_SECONDS
    bench.add(ValueRecord(NAME, "postgres", "idle agent: the hub's memory per live stream", (rss_after - rss_before) / count, "KiB",
                          notes=f"{count:,} streams open on one replica"))  # fmt: skip
    bench.add(ValueRecord(NAME, "postgres", "idle agent: CPU per presence write, hub", cpu.hubs * 1e6 / touches, "µs",
                          notes=f"PostgreSQL {cpu.database * 1e6 / touches:.0f} µs; {touches / seconds:,.0f} presence writes/s from {count:,} agents"))  # fmt: skip
    bench.add(ValueRecord(NAME, "postgres", "idle agent: CPU per presence write, PostgreSQL", cpu.database * 1e6 / touches, "µs"))


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    if store.kind is not StoreKind.postgres:
        bench.step(f"{NAME}: replicas share a PostgreSQL database; nothing to run on {store.kind.value}")
        return
    redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()  # fail early, with the reason, when Redis is not there
    singles: dict[str, float] = {}
    for replicas in REPLICAS:
        spec = store.fresh()
        channel = f"agora:bench:{secrets.token_hex(4)}"  # its own: nothing else's wake-ups reach these hubs
        with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="agora-bench-replicas-") as tmp:
            hubs = [
                stack.enter_context(hub_server(HubSpec(spec.data_dir / f"replica-{r}", spec.database_url), "--redis-url", REDIS_URL, "--redis-channel", channel))
                for r in range(replicas)
            ]  # one after the other: the first migrates the database
            admin = HubSpec(spec.data_dir / "replica-0").admin_key
            rate = _sends(bench, hubs, admin, replicas, singles.get("send"))
            singles.setdefault("send", rate)
            rate = _task_cycle(bench, hubs, admin, replicas, singles.get("tasks"), Path(tmp))
            singles.setdefault("tasks", rate)
    _idle_agents(bench, store)
    _send_floor(bench, store)


def _send_floor(bench: Bench, store: StoreProvider) -> None:
    """Beside the hub's CPU per HTTP send (above): the part its store takes, and raw asyncpg's floor for the same
    statement (``benchmarks/send_floor.py``)."""
    sends = 2_000 if bench.profile.load_seconds < 5 else 8_000
    bench.step(f"{NAME}: the single send's statement, through the store and by raw asyncpg ({sends:,} each, 8 at once, best of 5)")
    through_store, floor = send_floor.measure(store.fresh().database_url or "", sends)
    bench.add(ValueRecord(NAME, "postgres", "single send: the store's statement, CPU per send", through_store, "µs",
                          notes=f"in-process, 8 at once; raw asyncpg runs the same statement in {floor:.0f} µs"))  # fmt: skip
    bench.add(ValueRecord(NAME, "postgres", "single send: raw asyncpg floor, CPU per statement", floor, "µs"))

