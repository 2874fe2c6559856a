"""python -m benchmarks [SCENARIO ...] [--store sqlite|postgres|both] [--quick] [--out PATH]"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from .bench import DEFAULT, QUICK, Bench
from .load import pick_generator
from .report import render, write_json
from .scenarios import SCENARIOS, Scenario
from .servers import ROOT
from .stores import DEFAULT_PG_URL, StoreKind, StoreProvider

STORES = {
    "sqlite": [StoreKind.sqlite],
    "postgres": [StoreKind.postgres],
    "both": [StoreKind.sqlite, StoreKind.postgres],
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the Agora hub against a trivial-FastAPI ceiling measured in the same run.",
        epilog="scenarios: " + "; ".join(f"{s.name}: {s.summary}" for s in SCENARIOS.values()),
    )
    parser.add_argument(
        "scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--store", choices=list(STORES), default="sqlite", help="hub store(s) to run against")
    parser.add_argument("--quick", action="store_true", help="shorter runs and fewer agents (well under a minute)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/latest.json"), help="where to write JSON")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto", help="auto: wrk if installed")
    parser.add_argument("--connections", type=int, help="connections of the throughput runs")
    parser.add_argument(
        "--pg-url", default=DEFAULT_PG_URL, help="PostgreSQL server where agora_bench_* databases are made"
    )
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    return args


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def run_scenario(bench: Bench, scenario: Scenario, store: StoreProvider | None, failures: list[dict[str, str]]) -> None:
    where = f"{scenario.name}{f' [{store.kind.value}]' if store else ''}"
    bench.console.rule(f"[bold]{where}", align="left")
    try:
        scenario.run(bench, store)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one broken scenario must not lose the others' figures
        bench.console.print(f"[red]{where} failed: {exc}[/]")
        bench.console.print(f"[dim]{traceback.format_exc(limit=-3)}[/]")
        failures.append(
            {"scenario": scenario.name, "store": store.kind.value if store else "—", "error": str(exc)[:2000]}
        )


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=200)  # piped: keep table rows on one line
    profile = QUICK if args.quick else DEFAULT
    if args.connections:
        profile = type(profile)(**{**asdict(profile), "connections": args.connections})
    bench = Bench(profile=profile, generator=pick_generator(args.generator), console=console)
    selected = [SCENARIOS[name] for name in (args.scenarios or SCENARIOS)]
    started = time.time()
    load_at_start = os.getloadavg()  # other work on the machine skews every figure; the JSON says how busy it was
    console.print(f"[bold]Agora benchmarks[/] — load generator: {bench.generator.name}; profile: {profile}")
    failures: list[dict[str, str]] = []
    for scenario in (s for s in selected if not s.per_store):
        run_scenario(bench, scenario, None, failures)
    for kind in STORES[args.store] if any(s.per_store for s in selected) else []:
        store = StoreProvider(kind, args.pg_url)
        try:
            store.check()
            for scenario in (s for s in selected if s.per_store):
                run_scenario(bench, scenario, store, failures)
        except Exception as exc:  # e.g. PostgreSQL unreachable: report it, keep the other store's figures
            console.print(f"[red]{kind.value}: {exc}[/]")
            failures.append({"scenario": "*", "store": kind.value, "error": str(exc)[:2000]})
        finally:
            store.close()
    meta: dict[str, Any] = {
        "command": "python -m benchmarks " + " ".join(argv),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
        "seconds": round(time.time() - started, 1),
        "generator": bench.generator.name,
        "profile": asdict(profile),
        "stores": [k.value for k in STORES[args.store]],
        "scenarios": [s.name for s in selected],
        "git": git_revision(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "failures": failures,
    }
    console.print()
    render(console, bench.records, meta)
    write_json(args.out, bench.records, meta)
    console.print(f"[dim]{len(bench.records)} figures in {meta['seconds']:.0f}s; JSON written to {args.out}[/]")
    for failure in failures:
        console.print(f"[red]failed: {failure['scenario']} [{failure['store']}]: {failure['error'][:300]}[/]")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
