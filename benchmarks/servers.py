"""Servers under test, each in its own process on a free loopback port: the hub and the ceiling app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .http import probe_status

READY_POLL_SECONDS = 0.005
ROOT = Path(__file__).resolve().parent.parent  # the repository: ``-m benchmarks.ceiling_app`` resolves from here


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The environment without AGORA_* settings: a hub runs with its defaults unless told otherwise."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc/PID/status."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


@dataclass
class Server:
    """A subprocess serving HTTP; ``start`` returns once ``ready_path`` answers 200."""

    args: list[str]
    log_path: Path
    ready_path: str = "/ready"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_seconds: float = 0.0

    def start(self, timeout: float = 30.0) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            started = time.perf_counter()
            self.proc = subprocess.Popen(
                [*self.args, "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=_clean_env(), cwd=ROOT
            )
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{' '.join(self.args[1:4])} exited with {self.proc.returncode}:\n{self._log_tail()}"
                )
            if probe_status(self.port, self.ready_path) == 200:
                self.ready_seconds = time.perf_counter() - started
                return self
            time.sleep(READY_POLL_SECONDS)
        self.stop()
        raise RuntimeError(f"not ready after {timeout}s:\n{self._log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def memory_kb(self) -> dict[str, int]:
        assert self.proc is not None
        return memory_kb(self.proc.pid)

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class HubSpec:
    """Where a hub keeps its data: a data directory (admin.key, SQLite) and an optional database URL."""

    data_dir: Path
    database_url: str | None = None

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()


# Rate limits far above anything a run sends: the limiter runs (its cost is in every figure) but never refuses, so
# one key driving a whole run is not measured as a stream of 429s. ``security`` measures the limits themselves.
UNREFUSING_LIMITS = (
    "--rate-limit",
    "agent.read=1000000/s:1000000,agent.write=1000000/s:1000000,customer.read=1000000/s:1000000,"
    "customer.write=1000000/s:1000000,anonymous=1000000/s:1000000",
)


def hub_server(spec: HubSpec, *options: str) -> Server:
    """``python -m agora serve`` with its default settings (but unrefusing rate limits, then ``options``), on ``spec``."""
    args = [sys.executable, "-m", "agora", "serve", "--data-dir", str(spec.data_dir), *UNREFUSING_LIMITS, *options]
    if spec.database_url:
        args += ["--database-url", spec.database_url]
    return Server(args, log_path=spec.data_dir / "hub.log")


def ceiling_server(log_dir: Path) -> Server:
    return Server([sys.executable, "-m", "benchmarks.ceiling_app"], log_path=log_dir / "ceiling.log")
