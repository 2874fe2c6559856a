"""Start a real hub (``agora serve``) in a subprocess on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the socket listening on ``port``. A port ``free_port`` handed out may be taken
    by another test's process before the hub binds it; that process's /ready must not pass for this hub's."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd) in {f"socket:[{inode}]" for inode in inodes}:
                return True
    return False


@dataclass
class HubProcess:
    data_dir: Path
    database_url: str | None = None
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_seconds: float | None = None
    python: str = sys.executable
    run_as: list[str] = field(default_factory=list)  # a command that execs the hub as another user (setpriv …)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "hub.log"

    @property
    def admin_key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def start(self, timeout: float = 60.0, attempts: int = 3) -> HubProcess:
        """Start the hub and wait for /ready, answered by this hub's own process. The limit is generous: on a busy
        2-core machine (a container image being built beside the suite) importing the hub alone has taken 6 s, and a
        PostgreSQL start three times that. A port another process took first is traded for a new one."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [*self.run_as, self.python, "-m", "agora", "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if self.database_url:
            args += ["--database-url", self.database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}  # only what the test sets
        env.update({"AGORA_LOG_LEVEL": "info", "AGORA_LOCAL_NODE": "false", **self.env})  # a node only where a test wants one
        started = time.perf_counter()
        self.proc = subprocess.Popen(args + self.extra_args, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT, env=env)
        deadline = started + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text()[-3000:]
                if attempts > 1 and "address already in use" in tail:
                    self.port = free_port()
                    return self.start(timeout, attempts - 1)
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/ready", timeout=0.5).status_code == 200 and listening(self.proc.pid, self.port):
                    self.ready_seconds = time.perf_counter() - started
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"hub not ready after {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.admin_key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@dataclass
class FixtureServer:
    """A test's own server script (an upstream MCP server, a remote A2A agent…) on a fixed free port, so it can be
    killed and brought back where the hub expects it. ``args`` may use ``{port}``; ``probe`` is a path that answers
    (any status) once the server is up."""

    script: str
    args: list[str]
    probe: str = "/"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> FixtureServer:
        args = [a.format(port=self.port) for a in self.args]
        self.proc = subprocess.Popen([sys.executable, self.script, *args])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(self.origin + self.probe, timeout=0.5)
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.script} did not start")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
