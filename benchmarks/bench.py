"""What a benchmark run shares: its profile, the load generator, the console and the records."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console

from .load import Body, Generator, LoadResult, Request, Shape
from .report import Record
from .servers import HubSpec, Server


@dataclass(frozen=True)
class Profile:
    load_seconds: float  # each throughput run (many connections)
    latency_seconds: float  # each latency run (one connection, one request at a time)
    connections: int  # connections of a throughput run
    agents: int  # agents registered before the query scenario measures
    coldstart_runs: int  # hub starts per kind of data directory
    settle_seconds: float  # idle time before reading a process's memory
    store_messages: int  # messages in the store the storecopy scenario backs up and copies


DEFAULT = Profile(
    load_seconds=8, latency_seconds=5, connections=32, agents=10_000, coldstart_runs=5, settle_seconds=2, store_messages=1_000_000
)
QUICK = Profile(
    load_seconds=2, latency_seconds=2, connections=32, agents=1_000, coldstart_runs=2, settle_seconds=0.5, store_messages=50_000
)


@dataclass
class Bench:
    profile: Profile
    generator: Generator
    console: Console
    records: list[Record] = field(default_factory=list)
    ceilings: dict[Shape, LoadResult] = field(default_factory=dict)

    @property
    def throughput(self) -> Shape:
        return Shape(self.profile.connections, self.profile.load_seconds)

    @property
    def latency(self) -> Shape:
        return Shape(1, self.profile.latency_seconds)

    def drive(self, server: Server, request: Request, shape: Shape) -> LoadResult:
        """Run the load generator against ``server``, also measuring the CPU the server spends."""
        cpu_before = server.cpu_seconds()
        result = self.generator.run(request, shape)
        result.server_cpu_seconds = server.cpu_seconds() - cpu_before
        return result

    def add(self, record: Record) -> None:
        self.records.append(record)

    def step(self, message: str) -> None:
        self.console.print(f"[dim]· {message}[/]")


def hub_request(hub: Server, key: str, path: str, body: Body) -> Request:
    """A load-generator request to the hub with API key ``key``."""
    return Request(hub.port, path, body, {"Authorization": f"Bearer {key}"})


def call_hub(hub: Server, key: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One JSON call to the hub (outside any measurement); raises on a non-2xx answer."""
    response = httpx.post(
        f"http://127.0.0.1:{hub.port}{path}",
        content=json.dumps(payload),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def agent_count(hub: Server, spec: HubSpec) -> int:
    return int(call_hub(hub, spec.admin_key, "/agora/query/marketplace", {})["total_agents"])
