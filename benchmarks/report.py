"""Results: records, the Rich tables and the JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .load import LoadResult


@dataclass(frozen=True)
class Check:
    """A target and whether the figure meets it."""

    target: str
    ok: bool


def at_least(value: float, target: float, text: str) -> Check:
    return Check(text, value >= target)


def at_most(value: float, target: float, text: str) -> Check:
    return Check(text, value <= target)


@dataclass
class LoadRecord:
    """A load run (requests/s and latency), with the ceiling run it is compared to."""

    scenario: str
    store: str
    label: str
    load: LoadResult
    ceiling: LoadResult | None = None
    check: Check | None = None
    notes: str = ""

    @property
    def ratio(self) -> float | None:
        return self.load.rps / self.ceiling.rps if self.ceiling and self.ceiling.rps else None


@dataclass
class ValueRecord:
    """A single figure: a duration, a memory size."""

    scenario: str
    store: str
    label: str
    value: float
    unit: str
    check: Check | None = None
    notes: str = ""


Record = LoadRecord | ValueRecord


CAPTION = (
    "×ceiling: req/s over the ceiling's at the same connection count. CPU ms/req, cores: user + system CPU of the "
    "server process alone (not PostgreSQL, not the load generator); 1.00 cores = one core all along."
)


def _verdict(check: Check | None) -> str:
    if check is None:
        return ""
    return "[green]ok[/]" if check.ok else "[red]MISSED[/]"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _shown(v: ValueRecord) -> str:
    if not v.unit:
        return f"{v.value:.3f}"  # a score (nDCG, recall) or a difference of scores
    return f"{v.value:,.2f} {v.unit}" if v.unit in ("s", "ms") else f"{v.value:,.1f} {v.unit}"


def render(console: Console, records: list[Record], meta: dict[str, Any]) -> None:
    loads = [r for r in records if isinstance(r, LoadRecord)]
    values = [r for r in records if isinstance(r, ValueRecord)]
    if loads:
        table = Table(
            title=f"HTTP load — generator: {meta['generator']}",
            title_justify="left",
            caption=CAPTION,
            caption_justify="left",
        )
        for name in ("Scenario", "Store", "What", "Load"):
            table.add_column(name)
        for name in ("Requests", "Errors", "req/s", "p50 ms", "p99 ms", "×ceiling", "CPU ms/req", "cores"):
            table.add_column(name, justify="right")
        for name in ("Target", "", "Notes"):
            table.add_column(name)
        for r in loads:
            load = r.load
            table.add_row(
                r.scenario, r.store, r.label, f"c={load.connections}, {load.seconds:.0f}s", f"{load.requests:,}",
                f"{load.errors:,}", f"{load.rps:,.0f}", f"{load.p50_ms:.2f}", f"{load.p99_ms:.2f}", _fmt(r.ratio),
                _fmt(load.server_cpu_ms_per_request), _fmt(load.server_cpu_share),
                r.check.target if r.check else "", _verdict(r.check), r.notes,
            )  # fmt: skip
        console.print(table)
    if values:
        table = Table(title="Single figures: start-up, memory, streams", title_justify="left")
        for name in ("Scenario", "Store", "Measure", "Value", "Target", "", "Notes"):
            table.add_column(name, justify="right" if name == "Value" else "left")
        for v in values:
            table.add_row(
                v.scenario, v.store, v.label, _shown(v), v.check.target if v.check else "", _verdict(v.check), v.notes
            )
        console.print(table)


def to_json(records: list[Record], meta: dict[str, Any]) -> dict[str, Any]:
    def load_row(r: LoadRecord) -> dict[str, Any]:
        row = asdict(r)
        for key, result in (("load", r.load), ("ceiling", r.ceiling)):
            if result is not None:
                row[key].update(
                    rps=result.rps,
                    server_cpu_ms_per_request=result.server_cpu_ms_per_request,
                    server_cpu_share=result.server_cpu_share,
                )
        row["ratio_to_ceiling"] = r.ratio
        return row

    return {
        "meta": meta,
        "load": [load_row(r) for r in records if isinstance(r, LoadRecord)],
        "values": [asdict(r) for r in records if isinstance(r, ValueRecord)],
    }


def write_json(path: Path, records: list[Record], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(records, meta), indent=2) + "\n")
