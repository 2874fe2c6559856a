"""quickstart: the README's five-minute path as a newcomer takes it, step by step, in a fresh clone and virtualenv."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from ..bench import Bench
from ..report import ValueRecord, at_most
from ..servers import ROOT, free_port
from ..stores import StoreProvider

NAME = "quickstart"
TARGET_SECONDS = 300.0  # "from pip install to two agents exchanging a message and a task in under five minutes"


def _snippet() -> str:
    """The README's Python quickstart, exactly as written there."""
    text = (ROOT / "README.md").read_text()
    return text.split("<!-- quickstart:python -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


def _until(condition: object, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():  # type: ignore[operator]
        if time.perf_counter() > deadline:
            raise TimeoutError("a quickstart step did not finish in time")
        time.sleep(0.02)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/ready", timeout=0.5).status_code == 200
    except httpx.TransportError:
        return False


def run(bench: Bench, store: StoreProvider | None) -> None:
    steps: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="agora-newcomer-") as tmp:
        home = Path(tmp) / "agora"

        def step(label: str, command: str, note: str = "") -> None:
            bench.step(f"{NAME}: {label}")
            started = time.perf_counter()
            subprocess.run(["bash", "-c", command], cwd=home if home.exists() else tmp, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)  # fmt: skip
            steps.append((label, time.perf_counter() - started, note))

        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGORA_", "VIRTUAL_ENV", "PIP_"))}
        env["PIP_NO_CACHE_DIR"] = "1"  # a newcomer has no pip cache: every package is downloaded
        step("git clone", f"git clone --quiet {ROOT} {home}")
        step("venv + pip install -e . (no pip cache)", "python3 -m venv .venv && .venv/bin/pip install --quiet -e .",
             "downloads from the package index this machine reaches")  # fmt: skip
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env.update({"AGORA_PORT": str(port), "AGORA_URL": url, "PATH": f"{home / '.venv' / 'bin'}:{env['PATH']}"})
        processes: list[subprocess.Popen[bytes]] = []
        try:
            started = time.perf_counter()
            processes.append(subprocess.Popen(["agora", "serve"], cwd=home, env=env,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            _until(lambda: _ready(url), 60)
            steps.append(("agora serve → ready", time.perf_counter() - started, ""))
            started = time.perf_counter()
            processes.append(subprocess.Popen([str(home / ".venv/bin/python"), "examples/echo_agent.py"], cwd=home,
                                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
            key = (home / ".agora" / "admin.key").read_text().strip()
            _until(lambda: httpx.get(url + "/agora/query/agents", params={"capabilities": "echo"},
                                     headers={"Authorization": f"Bearer {key}"}).json()["count"] > 0, 60)  # fmt: skip
            steps.append(("python examples/echo_agent.py → registered", time.perf_counter() - started, ""))
            (home / "quickstart.py").write_text(_snippet())
            step("python quickstart.py (README snippet: register, message round trip, task round trip)",
                 ".venv/bin/python quickstart.py")  # fmt: skip
        finally:
            for process in reversed(processes):
                process.terminate()
                process.wait(15)
    total = sum(seconds for _, seconds, _ in steps)
    for label, seconds, note in steps:
        bench.add(ValueRecord(NAME, "sqlite", label, seconds, "s", notes=note))
    bench.add(ValueRecord(NAME, "sqlite", "the whole path, clone to task answered", total, "s",
                          at_most(total, TARGET_SECONDS, "< 5 min")))  # fmt: skip
