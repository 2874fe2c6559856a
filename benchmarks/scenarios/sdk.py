"""sdk: the SDK's cost per call over raw httpx on the same call, and `agora serve` start → the echo example's first answer."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from agora_sdk import AgoraClient, AsyncAgoraClient

from ..bench import Bench, call_hub
from ..report import ValueRecord, at_most
from ..servers import ROOT, HubSpec, Server, free_port, hub_server
from ..stores import StoreProvider

NAME = "sdk"
TARGET_OVERHEAD = 1.2
TARGET_FIRST_ANSWER_SECONDS = 3.0
ROUNDS = 6  # raw and SDK alternate, so drift on this noisy machine hits both alike


def _time_sync(call: Callable[[], Any], seconds: float) -> float:
    """Mean seconds per call, calling one at a time for ``seconds``."""
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        call()
        count += 1
    return elapsed / count


async def _time_async(call: Callable[[], Awaitable[Any]], seconds: float) -> float:
    count, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        await call()
        count += 1
    return elapsed / count


def _overhead(bench: Bench, hub: Server, key: str, agent_id: str) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``agora.agents.get``: raw httpx (JSON in, dict out) vs the typed SDK method (model out)."""
    slice_seconds = bench.profile.latency_seconds / ROUNDS
    url = f"http://127.0.0.1:{hub.port}"
    headers = {"Authorization": f"Bearer {key}"}
    raw, sdk = [], []
    with httpx.Client(base_url=url, headers=headers) as http, AgoraClient(url, key) as client:
        def raw_call() -> Any:
            response = http.post("/agora/agents/get", json={"agent": agent_id})
            response.raise_for_status()
            return response.json()

        for _ in range(ROUNDS):
            raw.append(_time_sync(raw_call, slice_seconds))
            sdk.append(_time_sync(lambda: client.agents.get(agent_id), slice_seconds))
    return raw, sdk


async def _overhead_async(bench: Bench, hub: Server, key: str, agent_id: str) -> tuple[list[float], list[float]]:
    slice_seconds = bench.profile.latency_seconds / ROUNDS
    url = f"http://127.0.0.1:{hub.port}"
    raw, sdk = [], []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        async with AsyncAgoraClient(url, key) as client:
            async def raw_call() -> Any:
                response = await http.post("/agora/agents/get", json={"agent": agent_id})
                response.raise_for_status()
                return response.json()

            for _ in range(ROUNDS):
                raw.append(await _time_async(raw_call, slice_seconds))
                sdk.append(await _time_async(lambda: client.agents.get(agent_id), slice_seconds))
    return raw, sdk


def _record_overhead(bench: Bench, store: str, flavour: str, raw: list[float], sdk: list[float]) -> None:
    raw_us, sdk_us = statistics.median(raw) * 1e6, statistics.median(sdk) * 1e6
    ratio = sdk_us / raw_us
    bench.add(
        ValueRecord(
            NAME, store, f"{flavour} SDK call / raw httpx call (agents.get)", ratio, "×",
            at_most(ratio, TARGET_OVERHEAD, f"<= {TARGET_OVERHEAD}x"),
            notes=f"SDK {sdk_us:.0f} µs, raw {raw_us:.0f} µs per call (median of {ROUNDS} alternating slices)",
        )
    )  # fmt: skip


def _first_answer(spec: HubSpec) -> tuple[float, float]:
    """Spawn the hub and the echo example at once; seconds until the hub is ready and until the first echo returns."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env.update({"AGORA_URL": f"http://127.0.0.1:{port}", "AGORA_DATA_DIR": str(spec.data_dir)})
    hub_args = [sys.executable, "-m", "agora", "serve", "--port", str(port), "--data-dir", str(spec.data_dir)]
    if spec.database_url:
        hub_args += ["--database-url", spec.database_url]
    log = open(spec.data_dir / "hub.log", "ab")  # noqa: SIM115 - closed below, after both processes end
    started = time.perf_counter()
    processes = [subprocess.Popen(hub_args, env=env, stdout=log, stderr=subprocess.STDOUT)]
    try:
        _until(lambda: (spec.data_dir / "admin.key").exists())  # the hub writes it first thing; a newcomer's cue
        processes.append(subprocess.Popen([sys.executable, str(ROOT / "examples" / "echo_agent.py")], env=env,
                                          stdout=log, stderr=subprocess.STDOUT))  # fmt: skip
        with AgoraClient(env["AGORA_URL"], spec.admin_key, retries=50, timeout=10) as client:
            client.register("EchoBenchAsker")
            ready = time.perf_counter() - started
            _until(lambda: bool(client.query.agents(capabilities=["echo"]).agents))
            client.messaging.send("EchoAgent", "ping")
            reply = client.messaging.receive(wait=30)
            assert reply.messages and reply.messages[0].content == {"echo": "ping"}, reply
            return ready, time.perf_counter() - started
    finally:
        for process in reversed(processes):
            process.terminate()
            process.wait(15)
        log.close()


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError("the echo example did not come up in time; see the hub.log of the run")
        time.sleep(0.005)


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    with hub_server(spec) as hub:
        agent = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "sdk-bench", "capabilities": ["x"]})
        bench.step(f"{NAME}: agents.get one at a time, raw httpx and the SDK alternating ({ROUNDS} slices each)")
        raw, sdk = _overhead(bench, hub, spec.admin_key, agent["agent_id"])
        _record_overhead(bench, store.kind.value, "sync", raw, sdk)
        raw, sdk = asyncio.run(_overhead_async(bench, hub, spec.admin_key, agent["agent_id"]))
        _record_overhead(bench, store.kind.value, "async", raw, sdk)
    bench.step(f"{NAME}: hub and echo example spawned together, until the first echo comes back (3 runs)")
    runs = [_first_answer(store.fresh()) for _ in range(3)]
    answer = statistics.median(r[1] for r in runs)
    bench.add(
        ValueRecord(
            NAME, store.kind.value, "`agora serve` start → echo example's first answer (median of 3)", answer, "s",
            at_most(answer, TARGET_FIRST_ANSWER_SECONDS, f"<= {TARGET_FIRST_ANSWER_SECONDS:g} s"),
            notes=f"hub ready and asker registered after {statistics.median(r[0] for r in runs):.2f} s; "
            f"runs {', '.join(f'{r[1]:.2f}' for r in runs)} s",
        )
    )  # fmt: skip
