"""Load generation: one request shape, two interchangeable generators (wrk, or Python processes).

The same generator drives the ceiling and every scenario of a run, so their ratio is meaningful.
``wrk`` (C, one thread) costs the shared cores the least; the Python fallback runs a few processes,
each an asyncio loop (uvloop) with keep-alive connections. Every run is bounded in time (wrk by ``-d``
and ``--timeout``, with a hard subprocess timeout), and the Python generator also in request count.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Protocol

from .http import Connection, build_request

WRK_THREADS = 1  # one C thread saturates a Python server many times over; more would steal its CPU
PYTHON_PROCESSES = 2
WORKER_STRIDE = 100_000_000  # request i of worker w has index w * STRIDE + i: unique across workers


class Body(Protocol):
    """What each request carries: the same bytes every time, or a new body per request."""

    def render(self, index: int) -> bytes:
        """The body of request ``index`` (unique across connections and workers)."""
        ...

    def lua(self) -> str:
        """Lua for wrk: set ``wrk.body``, or define ``request()`` (global ``tid``: the wrk thread's number)."""
        ...


@dataclass(frozen=True)
class StaticBody:
    payload: bytes

    def render(self, index: int) -> bytes:
        return self.payload

    def lua(self) -> str:
        return f"wrk.body = [==[{self.payload.decode()}]==]\n"


@dataclass(frozen=True)
class Request:
    port: int
    path: str
    body: Body
    headers: dict[str, str] = field(default_factory=dict)
    spread: tuple[int, ...] = ()  # more ports of the same service (replicas): connections are dealt out over all

    def port_of(self, connection: int) -> int:
        """The port the ``connection``-th connection of a run uses."""
        ports = (self.port, *self.spread)
        return ports[connection % len(ports)]

    def all_headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **self.headers}


@dataclass(frozen=True)
class Shape:
    """How hard to push: connections kept busy, for how long, at most how many requests."""

    connections: int
    seconds: float
    max_requests: int = 10_000_000

    @property
    def label(self) -> str:
        return f"c={self.connections}, {self.seconds:g}s"


@dataclass
class LoadResult:
    generator: str
    connections: int
    requests: int
    errors: int  # non-2xx answers, timeouts, connection errors
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_seconds: float | None = None  # user + system CPU of the server process during the run

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_cpu_ms_per_request(self) -> float | None:
        if self.server_cpu_seconds is None or not self.requests:
            return None
        return self.server_cpu_seconds * 1000 / self.requests

    @property
    def server_cpu_share(self) -> float | None:
        """Cores the server process kept busy on average (1.0 = one core the whole run)."""
        return self.server_cpu_seconds / self.seconds if self.server_cpu_seconds is not None and self.seconds else None


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Generator(Protocol):
    name: str

    def run(self, request: Request, shape: Shape) -> LoadResult: ...


# -- wrk --------------------------------------------------------------------------------------------

_WRK_SCRIPT = """\
local threads_started = 0
function setup(thread)
  thread:set("tid", threads_started)
  threads_started = threads_started + 1
end
wrk.method = "POST"
{headers}
{body}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests":%d,"duration_us":%d,"errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


class Wrk:
    def __init__(self, path: str):
        self.path = path
        version = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        match = re.search(r"wrk (\S+)", version)
        self.name = f"wrk {match.group(1) if match else '?'} (1 thread)"

    def run(self, request: Request, shape: Shape) -> LoadResult:
        if request.spread:
            raise ValueError("wrk drives one port: spread a request over replicas with the Python generator")
        headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in request.all_headers().items())
        script = _WRK_SCRIPT.format(headers=headers, body=request.body.lua())
        with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="agora-bench-") as f:
            f.write(script)
            f.flush()
            args = [
                self.path, f"-t{WRK_THREADS}", f"-c{shape.connections}", f"-d{shape.seconds:g}s", "--timeout", "10s",
                "-s", f.name, f"http://127.0.0.1:{request.port}{request.path}",
            ]  # fmt: skip
            out = subprocess.run(args, capture_output=True, text=True, timeout=shape.seconds + 30)
        line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_RESULT ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-500:]} {out.stderr[-500:]}")
        r = json.loads(line.removeprefix("WRK_RESULT "))
        return LoadResult(
            generator=self.name,
            connections=shape.connections,
            requests=r["requests"],
            errors=r["errors"],
            seconds=r["duration_us"] / 1e6,
            p50_ms=r["p50_us"] / 1000,
            p99_ms=r["p99_us"] / 1000,
            max_ms=r["max_us"] / 1000,
        )


# -- Python processes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    errors: int
    latencies: list[float]
    finished_at: float


@dataclass(frozen=True)
class _Job:
    request: Request
    worker: int
    connections: int
    first_connection: int  # the run-wide index of this worker's first connection
    start_at: float  # time.time(): every process starts together
    stop_at: float
    max_requests: int


def _worker_main(job: _Job) -> _Outcome:
    try:
        import uvloop

        return uvloop.run(_worker(job))
    except ImportError:
        return asyncio.run(_worker(job))


async def _worker(job: _Job) -> _Outcome:
    latencies: list[float] = []
    errors = 0
    sent = 0
    headers = job.request.all_headers()

    async def connection_loop(index: int) -> None:
        nonlocal errors, sent
        port = job.request.port_of(job.first_connection + index)
        async with Connection(port) as conn:
            while time.time() < job.stop_at and sent < job.max_requests:
                body = job.request.body.render(job.worker * WORKER_STRIDE + sent)
                raw = build_request("POST", job.request.path, port, headers, body)
                sent += 1
                t0 = time.perf_counter()
                status, _ = await conn.send(raw)
                latencies.append(time.perf_counter() - t0)
                errors += not 200 <= status < 300

    await asyncio.sleep(max(0.0, job.start_at - time.time()))
    outcomes = await asyncio.gather(*(connection_loop(i) for i in range(job.connections)), return_exceptions=True)
    errors += sum(isinstance(o, BaseException) for o in outcomes)
    return _Outcome(errors, latencies, time.time())


class PythonLoad:
    def __init__(self, processes: int = PYTHON_PROCESSES):
        self.processes = processes
        self.name = f"python ({processes} processes, asyncio keep-alive)"

    def run(self, request: Request, shape: Shape) -> LoadResult:
        procs = min(self.processes, shape.connections)
        start = time.time() + 0.3
        counts = [shape.connections // procs + (w < shape.connections % procs) for w in range(procs)]
        jobs = [
            _Job(
                request=request,
                worker=w,
                connections=counts[w],
                first_connection=sum(counts[:w]),
                start_at=start,
                stop_at=start + shape.seconds,
                max_requests=shape.max_requests // procs,
            )
            for w in range(procs)
        ]
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            outcomes = pool.map(_worker_main, jobs)
        return measured(self.name, shape, start, [(o.errors, o.latencies, o.finished_at) for o in outcomes])


def measured(generator: str, shape: Shape, start: float, outcomes: list[tuple[int, list[float], float]]) -> LoadResult:
    """One run's result from its workers' (errors, latencies in seconds, time.time() they finished)."""
    seconds = max(0.001, max(finished for _, _, finished in outcomes) - start)
    latencies = sorted(x for _, found, _ in outcomes for x in found)
    return LoadResult(
        generator=generator,
        connections=shape.connections,
        requests=len(latencies),
        errors=sum(errors for errors, _, _ in outcomes),
        seconds=seconds,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        max_ms=(latencies[-1] if latencies else 0.0) * 1000,
    )


def pick_generator(preference: str) -> Generator:
    """``auto``: wrk when installed, else the Python generator."""
    wrk = shutil.which("wrk")
    if preference == "wrk" and wrk is None:
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install -y wrk)")
    if preference in ("auto", "wrk") and wrk is not None:
        return Wrk(wrk)
    return PythonLoad()
