"""ceiling: the trivial FastAPI endpoint every other figure is compared to (req/s, p50, p99)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .. import ceiling_app
from ..bench import Bench
from ..load import LoadResult, Request, Shape
from ..report import LoadRecord
from ..servers import ceiling_server
from ..stores import StoreProvider
from ..workload import RegisterBodies, run_prefix

NAME = "ceiling"


def ceiling_for(bench: Bench, shape: Shape) -> LoadResult:
    """The ceiling at ``shape``; the first call measures every shape the run uses (and records them)."""
    if shape not in bench.ceilings:
        _measure(bench, [bench.latency, bench.throughput] if shape in (bench.latency, bench.throughput) else [shape])
    return bench.ceilings[shape]


def _measure(bench: Bench, shapes: list[Shape]) -> None:
    with tempfile.TemporaryDirectory(prefix="agora-bench-ceiling-") as tmp, ceiling_server(Path(tmp)) as server:
        for shape in shapes:
            bench.step(f"ceiling: trivial FastAPI POST {ceiling_app.PATH}, {shape.label}")
            # Register-shaped bodies (a unique name and 1-5 capabilities) so request sizes match the hub's.
            result = bench.drive(server, Request(server.port, ceiling_app.PATH, RegisterBodies(run_prefix())), shape)
            bench.ceilings[shape] = result
            bench.add(LoadRecord(NAME, "—", f"FastAPI POST {ceiling_app.PATH}", result))


def run(bench: Bench, _store: StoreProvider | None) -> None:
    ceiling_for(bench, bench.latency)
