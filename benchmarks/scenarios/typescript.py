"""typescript: one TypeScript agent runtime (@agora-hub/sdk) beside one Python runtime (agora_sdk) on the same hub,
each with 8 handler slots and handlers that return at once: tasks/s over their WebSocket channels, CPU per task."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from ..bench import Bench
from ..report import ValueRecord, at_most
from ..servers import ROOT, Server, hub_server
from ..stores import StoreProvider
from .tasks import _assign

NAME = "typescript"
CAPACITY = 8
PACKAGE = ROOT / "sdk" / "typescript"


def _build(bench: Bench) -> None:
    """The package's locked dependencies (once) and its compiled code, as its tests build it."""
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: the TypeScript runtime cannot be built")
    if not (PACKAGE / "node_modules").exists():
        bench.step(f"{NAME}: npm ci")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, check=True, capture_output=True)
    bench.step(f"{NAME}: npm run build")
    subprocess.run([npm, "run", "build"], cwd=PACKAGE, check=True, capture_output=True)


def _handled(command: list[str], out: Path) -> dict[str, float]:
    """Start a runtime process (``benchmarks/runtime_agents.py``'s protocol: "ready", then a line on stdin), let it
    work, and read what it wrote to ``out``."""
    proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{command[1]} did not start")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    if proc.wait(300) != 0:
        raise RuntimeError(f"{command[1]} failed")
    result: dict[str, float] = json.loads(out.read_text())
    return result


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    _build(bench)
    count = 2_000 if bench.profile.load_seconds < 5 else 10_000
    seconds = str(bench.profile.load_seconds * 4)
    spec = store.fresh()
    kind = store.kind.value
    with tempfile.TemporaryDirectory(prefix="agora-bench-ts-") as tmp, hub_server(spec) as hub:
        url, out = f"http://127.0.0.1:{hub.port}", Path(tmp) / "runtime.json"
        runtimes = {
            "Python (agora_sdk)": [sys.executable, "-m", "benchmarks.runtime_agents", url, spec.admin_key, "1", str(CAPACITY), str(count), seconds, "1", str(out)],
            "TypeScript (@agora-hub/sdk)": ["node", str(PACKAGE / "build" / "bench" / "runtime-agent.js"), url, spec.admin_key, str(CAPACITY), str(count), seconds, str(out)],
        }  # fmt: skip
        rates = {}
        for label, command in runtimes.items():
            bench.step(f"{NAME}: assign {count:,} tasks; one {label} runtime, capacity {CAPACITY}, tasks pushed over its WebSocket")
            asyncio.run(_assign(hub.port, spec.admin_key, count, 50, connections=2))
            rates[label] = _measure(bench, hub, kind, label, command, out, count)
        python, typescript = rates.values()
        bench.add(ValueRecord(NAME, kind, "TypeScript runtime against the Python runtime, tasks/s", typescript / python, "×"))


def _measure(bench: Bench, hub: Server, kind: str, label: str, command: list[str], out: Path, count: int) -> float:
    cpu = hub.cpu_seconds()
    result = _handled(command, out)
    rate = result["handled"] / result["span_seconds"]
    agent_us = result["cpu_seconds"] / max(1, result["handled"]) * 1e6
    hub_us = (hub.cpu_seconds() - cpu) / max(1, result["handled"]) * 1e6
    row = f"one {label} runtime, capacity {CAPACITY}"
    bench.add(ValueRecord(NAME, kind, f"{row}, handled", rate, "/s",
                          notes=f"{int(result['handled']):,} of {count:,}; agent CPU {agent_us:.0f} µs/task, hub {hub_us:.0f} µs/task"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, f"{row}, agent CPU per task", agent_us, "µs"))
    twice = int(result["handled_twice"])
    bench.add(ValueRecord(NAME, kind, f"{row}, tasks handled twice", twice, "", at_most(twice, 0, "0")))
    return rate
