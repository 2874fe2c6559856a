"""register: registrations/s over HTTP on a fresh hub, one new agent per request."""

from __future__ import annotations

from ..bench import Bench, agent_count, hub_request
from ..load import LoadResult
from ..report import LoadRecord, at_least
from ..servers import HubSpec, Server, hub_server
from ..stores import StoreProvider
from ..workload import REGISTER_PATH, RegisterBodies, run_prefix
from .ceiling import ceiling_for

NAME = "register"
TARGET_RPS = 1_000


def register_load(bench: Bench, hub: Server, spec: HubSpec) -> LoadResult:
    """Register new agents (unique names, 1-5 capabilities) as fast as the hub takes them, for one throughput run."""
    bench.step(f"{NAME}: POST {REGISTER_PATH}, {bench.throughput.label}")
    return bench.drive(
        hub, hub_request(hub, spec.admin_key, REGISTER_PATH, RegisterBodies(run_prefix())), bench.throughput
    )


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    ceiling = ceiling_for(bench, bench.throughput)
    spec = store.fresh()
    with hub_server(spec) as hub:
        result = register_load(bench, hub, spec)
        stored = agent_count(hub, spec)
    bench.add(
        LoadRecord(
            NAME,
            store.kind.value,
            "a new agent per request",
            result,
            ceiling,
            at_least(result.rps, TARGET_RPS, f"≥ {TARGET_RPS:,}/s"),
            notes=f"{stored:,} agents stored",
        )
    )
