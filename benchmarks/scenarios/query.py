"""query: agora.query.agents by one capability among many registered agents (latency and throughput); then tasks
assigned to any agent with that capability among them (the least-loaded pick reads every capable agent)."""

from __future__ import annotations

import asyncio
import json

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from ..bench import Bench, call_hub, hub_request
from ..load import Shape, StaticBody
from ..report import LoadRecord, ValueRecord, at_most
from ..servers import HubSpec, Server, hub_server
from ..stores import StoreProvider
from ..workload import DISTINCT_CAPABILITIES, REGISTER_PATH, SeedResult, seed_agents
from .ceiling import ceiling_for

NAME = "query"
QUERY_PATH = "/agora/query/agents"
QUERY = {"capabilities": ["cap-7"], "limit": 50}
ASSIGN_PATH = "/agora/task/assign"
ASSIGN = {"task_type": "bench-pick", "required_capabilities": ["cap-7"]}
TARGET_P99_MS = 20.0
SEED_CONCURRENCY = 32
SEED_TIMEOUT_SECONDS = 300.0


def seed(bench: Bench, hub: Server, spec: HubSpec) -> SeedResult:
    count = bench.profile.agents
    with Progress(
        TextColumn("[dim]· {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=bench.console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(
            f"{NAME}: registering {count:,} agents ({DISTINCT_CAPABILITIES} capabilities, 1-5 each)", total=count
        )
        result = asyncio.run(
            seed_agents(
                hub.port,
                spec.admin_key,
                count,
                concurrency=SEED_CONCURRENCY,
                timeout=SEED_TIMEOUT_SECONDS,
                on_progress=lambda n: progress.advance(task, n),
            )
        )
    if result.failed or result.registered < count:
        raise RuntimeError(
            f"seeding registered {result.registered:,}/{count:,} agents; first error: {result.first_error}"
        )
    bench.step(f"{NAME}: {result.registered:,} agents registered in {result.seconds:.1f}s ({result.rps:,.0f}/s)")
    return result


def _measure(bench: Bench, store: StoreProvider, hub: Server, key: str, who: str, shape: Shape) -> None:
    answer = call_hub(hub, key, QUERY_PATH, QUERY)
    if answer["count"] != QUERY["limit"]:
        raise RuntimeError(f"the query found {answer['count']} agents, expected a full page of {QUERY['limit']}")
    agents = bench.profile.agents
    bench.step(f"{NAME}: POST {QUERY_PATH} {json.dumps(QUERY)} among {agents:,} agents, {who}, {shape.label}")
    result = bench.drive(hub, hub_request(hub, key, QUERY_PATH, StaticBody(json.dumps(QUERY).encode())), shape)
    bench.add(
        LoadRecord(
            NAME,
            store.kind.value,
            f"cap-7 among {agents:,}, {who}",
            result,
            ceiling_for(bench, shape),
            at_most(result.p99_ms, TARGET_P99_MS, f"p99 ≤ {TARGET_P99_MS:g} ms") if shape.connections == 1 else None,
            notes=f"{QUERY['limit']} agents, {len(json.dumps(answer)) / 1024:.0f} kB",
        )
    )


def _measure_assign(bench: Bench, store: StoreProvider, hub: Server, key: str) -> None:
    capable = call_hub(hub, key, "/agora/query/marketplace", {})["by_capability"].get(ASSIGN["required_capabilities"][0], 0)
    shape = bench.latency
    bench.step(f"{NAME}: POST {ASSIGN_PATH} {json.dumps(ASSIGN)}, {capable:,} capable of {bench.profile.agents:,} agents, {shape.label}")
    result = bench.drive(hub, hub_request(hub, key, ASSIGN_PATH, StaticBody(json.dumps(ASSIGN).encode())), shape)
    label = f"assign to any agent with cap-7 ({capable:,} capable) among {bench.profile.agents:,}, admin key"
    bench.add(LoadRecord(NAME, store.kind.value, label, result, ceiling_for(bench, shape), notes="the least loaded of them is preferred"))


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    ceiling_for(bench, bench.latency)
    spec = store.fresh()
    with hub_server(spec) as hub:
        seeded = seed(bench, hub, spec)
        # An agent's own token: its queries are scoped to its tenant, the common case in production.
        agent = call_hub(hub, spec.admin_key, REGISTER_PATH, {"agent_name": "bench-querier", "capabilities": ["cap-7"]})
        _measure(bench, store, hub, spec.admin_key, "admin key", bench.latency)
        _measure(bench, store, hub, spec.admin_key, "admin key", bench.throughput)
        _measure(bench, store, hub, agent["agent_token"], "agent key", bench.latency)
        _measure_assign(bench, store, hub, spec.admin_key)
    bench.add(
        ValueRecord(
            NAME,
            store.kind.value,
            f"seeding {seeded.registered:,} agents (Python client, c={SEED_CONCURRENCY})",
            seeded.rps,
            "reg/s",
            notes=f"{seeded.seconds:.1f}s",
        )
    )
