#!/usr/bin/env python3
"""Run the official A2A TCK (``a2aproject/a2a-tck``) against an Agora agent, and print its scores.

The TCK is not in a package registry: give the path of a local git checkout of it. For each branch asked for, the
script exports that branch into a scratch directory (the checkout is not touched), gives it a virtualenv of its own
(its dependencies from the registry, cached per commit under ``~/.cache/agora-tck``), starts a hub on loopback with
the A2A gRPC binding on, starts ``examples/a2a_tck_agent.py`` (the agent that does what the TCK asks of an agent under
test), runs the suite and prints pass/fail/skip per transport and per requirement level.

    python scripts/a2a_tck.py --tck ~/src/a2a-tck                      # 1.0-dev and 0.3.x, every transport
    python scripts/a2a_tck.py --tck ~/src/a2a-tck --branch 1.0-dev --transport grpc

How the hub is set up for it, and why:
- ``--egress-allow 127.0.0.1/32``: the TCK's webhook receiver listens on loopback, where a hub lets no caller's push
  notifications go by default.
- ``--rate-limit anonymous=off``: the TCK calls the public agent anonymously, hundreds of times a second.
- ``--a2a-default-agent``: the TCK's gRPC client does not send the card's ``tenant``, and the 0.3 branch reads the
  card at the host's root (``/.well-known/agent-card.json``), not under the URL it is given: the agent is the one a
  client reaches without naming one. The 0.3 branch runs straight at the agent's URL, as a 0.3 client would (no
  ``A2A-Version`` anywhere), and reads the card a request naming no version gets.
- ``--a2a-strict-cards`` for the 1.0 branch only: it asks for the card naming no version and checks it against the
  1.0 JSON schema, which allows no field beyond 1.0's; by default such a request gets the card 0.3 clients read too
  (``agora/transports/a2a/cards.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
AGENT = ROOT / "examples" / "a2a_tck_agent.py"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agora-tck"
BRANCHES = ("1.0-dev", "0.3.x")
AGENT_NAME = "tck-agent"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], **options: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, check=True, text=True, **options)  # type: ignore[call-overload]


def export(tck: Path, branch: str, into: Path) -> str:
    """The branch's files in ``into``; its commit."""
    commit = run(["git", "-C", str(tck), "rev-parse", branch], capture_output=True).stdout.strip()
    archive = subprocess.Popen(["git", "-C", str(tck), "archive", commit], stdout=subprocess.PIPE)
    run(["tar", "-x", "-C", str(into)], stdin=archive.stdout)
    archive.wait()
    return commit


def virtualenv(source: Path, commit: str) -> Path:
    """A virtualenv with the TCK's dependencies, made once per TCK commit."""
    home = CACHE / hashlib.sha256(commit.encode()).hexdigest()[:16]
    python = home / "bin" / "python"
    if not (home / "ready").exists():
        print(f"installing the TCK's dependencies ({commit[:10]}) into {home}", flush=True)
        run([sys.executable, "-m", "venv", "--clear", str(home)])
        run([str(python), "-m", "pip", "install", "--quiet", str(source)])
        (home / "ready").touch()
    return python


class Hub:
    """A hub and the TCK agent on loopback, in a scratch data directory."""

    def __init__(self, data: Path):
        self.port, self.grpc_port = free_port(), free_port()
        self.data = data
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, strict_cards: bool) -> str:
        """Start both; the agent's A2A URL."""
        log = open(self.data / "hub.log", "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")} | {"AGORA_LOCAL_NODE": "false"}
        self.processes.append(subprocess.Popen([
            sys.executable, "-m", "agora", "serve", "--port", str(self.port), "--data-dir", str(self.data),
            "--a2a-grpc-port", str(self.grpc_port), "--a2a-default-agent", AGENT_NAME,
            "--egress-allow", "127.0.0.1/32", "--rate-limit", "anonymous=off", *(["--a2a-strict-cards"] if strict_cards else []),
        ], stdout=log, stderr=subprocess.STDOUT, env=env))  # fmt: skip
        self._until(lambda: httpx.get(f"{self.url}/ready").status_code == 200, "the hub did not start")
        key = (self.data / "admin.key").read_text().strip()
        agent_env = env | {"AGORA_URL": self.url, "AGORA_API_KEY": key, "TCK_AGENT_NAME": AGENT_NAME, "TCK_AGENT_ACCESS": "public"}
        self.processes.append(subprocess.Popen([sys.executable, str(AGENT)], stdout=log, stderr=subprocess.STDOUT, env=agent_env))
        card = f"{self.url}/a2a/agents/{AGENT_NAME}/.well-known/agent-card.json"
        self._until(lambda: httpx.get(card).status_code == 200, "the TCK agent did not register")
        return httpx.get(card).json()["supportedInterfaces"][0]["url"]

    @staticmethod
    def _until(check: object, failure: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if check():  # type: ignore[operator]
                    return
            time.sleep(0.1)
        raise SystemExit(failure)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
            if process.poll() is None:
                process.kill()


def run_10(python: Path, source: Path, agent_url: str, transports: str) -> dict[str, object]:
    """TCK 1.0-dev: its compatibility report (per transport, per level, the requirements that failed)."""
    subprocess.run([str(python), "run_tck.py", "--sut-host", agent_url, "--transport", transports], cwd=source, check=False)
    report = json.loads((source / "reports" / "compatibility.json").read_text())
    failed = {
        name: {"level": r["level"], "transports": r["transports"], "error": (r["errors"] or [""])[0][:300]}
        for name, r in report["per_requirement"].items()
        if r["status"] == "FAIL"
    }
    summary = {k: v for k, v in report["summary"].items() if k.endswith("compatibility")}
    return {"per_transport": report["per_transport"], "summary": summary, "failed": failed}


def run_03(python: Path, source: Path, agent_url: str) -> dict[str, object]:
    """TCK 0.3.x, every category, straight at the agent: passed/failed/skipped per category."""
    # With a compliance report asked for, the runner keeps its per-category JSON reports (else it deletes them).
    command = [str(python), "run_tck.py", "--sut-url", agent_url, "--category", "all", "--compliance-report", "reports/compliance.json"]
    subprocess.run(command, cwd=source, check=False)
    per_category = {}
    for path in sorted(source.rglob("*_results.json")):  # under reports/, wherever pytest's rootdir put it
        summary = json.loads(path.read_text())["summary"]
        per_category[path.name.removesuffix("_results.json")] = {k: summary.get(k, 0) for k in ("passed", "failed", "skipped", "xfailed", "total")}
    return {"per_category": per_category}


def report(branch: str, scores: dict[str, object]) -> None:
    print(f"\nA2A TCK {branch}")
    rows = scores.get("per_transport") or scores.get("per_category") or {}
    print(f"{'':<26}{'passed':>8}{'failed':>8}{'skipped':>9}")
    for name, counts in rows.items():  # type: ignore[union-attr]
        print(f"{name:<26}{counts.get('passed', 0):>8}{counts.get('failed', 0):>8}{counts.get('skipped', 0):>9}")
    for name, value in (scores.get("summary") or {}).items():  # type: ignore[union-attr]
        print(f"{name}: {value}")
    for name, failure in (scores.get("failed") or {}).items():  # type: ignore[union-attr]
        print(f"FAILED {name} ({failure['level']}) on {', '.join(failure['transports'])}: {failure['error']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tck", type=Path, required=True, help="a local git checkout of a2aproject/a2a-tck")
    parser.add_argument("--branch", action="append", choices=BRANCHES, help="repeat for both; default: both")
    parser.add_argument("--transport", default="jsonrpc,http_json,grpc", help="1.0-dev's transports (comma-separated)")
    parser.add_argument("--json", type=Path, help="also write the scores here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (the TCK's reports, the hub's data)")
    args = parser.parse_args()
    scores: dict[str, object] = {}
    for branch in args.branch or BRANCHES:
        scratch = Path(tempfile.mkdtemp(prefix=f"agora-tck-{branch}-"))
        try:
            source, data = scratch / "tck", scratch / "hub"
            source.mkdir()
            data.mkdir()
            commit = export(args.tck.expanduser(), branch, source)
            python = virtualenv(source, commit)
            hub = Hub(data)
            try:
                agent_url = hub.start(strict_cards=branch == "1.0-dev")
                outcome = run_10(python, source, agent_url, args.transport) if branch == "1.0-dev" else run_03(python, source, agent_url)
            finally:
                hub.stop()
                shutil.copy(data / "hub.log", Path(tempfile.gettempdir()) / f"agora-tck-{branch}-hub.log")
            report(branch, outcome)
            scores[branch] = {"commit": commit, **outcome}
        finally:
            if args.keep:
                print(f"kept {scratch}")
            else:
                shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
