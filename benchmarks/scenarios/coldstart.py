"""coldstart: seconds from spawning ``python -m agora serve`` to ``GET /ready`` answering 200."""

from __future__ import annotations

import statistics

from ..bench import Bench
from ..report import ValueRecord, at_most
from ..servers import HubSpec, hub_server
from ..stores import StoreKind, StoreProvider

NAME = "coldstart"
TARGET_SECONDS = 2.0


def _start_once(spec: HubSpec) -> float:
    with hub_server(spec) as hub:
        return hub.ready_seconds


def _record(bench: Bench, store: StoreProvider, label: str, times: list[float], target: float | None) -> None:
    median = statistics.median(times)
    bench.add(
        ValueRecord(
            NAME,
            store.kind.value,
            f"{label} (median of {len(times)})",
            median,
            "s",
            at_most(median, target, f"< {target:g} s") if target is not None else None,
            notes=f"min {min(times):.2f}, max {max(times):.2f}",
        )
    )


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    runs = bench.profile.coldstart_runs
    new_database = " and a new database" if store.kind is StoreKind.postgres else ""
    bench.step(f"{NAME}: {runs} starts on an empty data directory{new_database}")
    specs = [store.fresh() for _ in range(runs)]  # created before timing: only the hub's own work is measured
    empty = [_start_once(spec) for spec in specs]
    bench.step(f"{NAME}: {runs} starts on an existing data directory")
    existing = [_start_once(specs[0]) for _ in range(runs)]
    _record(bench, store, "spawn → /ready, empty data dir", empty, TARGET_SECONDS)
    _record(bench, store, "spawn → /ready, existing data dir", existing, TARGET_SECONDS)
