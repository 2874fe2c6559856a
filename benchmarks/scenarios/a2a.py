"""a2a: A2A SendMessage round trips through the hub to an agent run by the SDK runtime and back, against an a2a-sdk
server doing the same work, in rounds that drive the two back to back (each issue-27 ratio is the median of the
rounds' own ratios: a change in the machine's speed during the run moves both sides of a ratio); then the same round
trip over the hub's gRPC binding beside JSON-RPC, both driven by Python processes (wrk speaks no gRPC), so the
generator's own cost is the same on both sides."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from ..bench import DEFAULT, Bench
from ..grpc_load import GrpcCall, GrpcLoad
from ..load import LoadResult, PythonLoad, Request, Shape, StaticBody
from ..report import Check, LoadRecord, ValueRecord, at_least, at_most
from ..servers import ROOT, Server, free_port, hub_server
from ..stores import StoreProvider

NAME = "a2a"
CLIENTS = 8
# Issue 27's targets, against the bare a2a-sdk server measured in the same rounds.
TARGET_P50_RATIO = 1.5  # hub p50 ÷ SDK p50 at 1 client, at most
TARGET_RPS_RATIO = 0.8  # hub round trips/s ÷ SDK's at CLIENTS clients, at least
ROUNDS, QUICK_ROUNDS = 5, 3  # SDK and hub, back to back, per shape
TARGET_P50_MS = 20.0
TARGET_PER_SECOND = 300.0
AGENT = "a2a-bench"


def send_message(port: int, path: str, key: str | None = None) -> Request:
    """A blocking A2A 1.0 JSON-RPC SendMessage (the same body every time: a hub and the SDK both take repeats).
    With a key: a known caller (an anonymous one would be rate-limited per address, all of this load being one)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": "tck-complete-task-bench", "role": "ROLE_USER", "parts": [{"text": "hello"}]}}}  # fmt: skip
    headers = {"A2A-Version": "1.0"} | ({"Authorization": f"Bearer {key}"} if key else {})
    return Request(port, path, StaticBody(json.dumps(body).encode()), headers)


def completes(request: Request) -> None:
    """One round trip outside the measurement must complete the task: JSON-RPC errors come with HTTP 200, and the
    load generator counts only non-2xx answers as errors."""
    body = request.body.render(0)
    answer = httpx.post(f"http://127.0.0.1:{request.port}{request.path}", content=body, headers=request.all_headers(), timeout=30).json()
    state = answer.get("result", {}).get("task", {}).get("status", {}).get("state")
    if state != "TASK_STATE_COMPLETED":
        raise RuntimeError(f"{request.path} did not complete the task: {answer}")


def _agent(hub: Server, key: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env |= {"AGORA_URL": f"http://127.0.0.1:{hub.port}", "AGORA_API_KEY": key, "BENCH_AGENT_NAME": AGENT}
    agent = subprocess.Popen([sys.executable, "-m", "benchmarks.a2a_agent"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    card = f"http://127.0.0.1:{hub.port}/a2a/agents/{AGENT}/.well-known/agent-card.json"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(card).status_code == 200:
            return agent
        time.sleep(0.05)
    agent.kill()
    raise RuntimeError("the benchmark's A2A agent did not come up")


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    shapes = [bench.latency, Shape(CLIENTS, bench.profile.load_seconds)]
    rounds = QUICK_ROUNDS if bench.profile.load_seconds < DEFAULT.load_seconds else ROUNDS
    grpc_port = free_port()
    with (
        Server([sys.executable, "-m", "benchmarks.a2a_ceiling_app"], log_path=spec.data_dir / "a2a-ceiling.log") as sdk,
        hub_server(spec, "--a2a-grpc-port", str(grpc_port)) as hub,
    ):
        agent = _agent(hub, spec.admin_key)
        try:
            direct, through = send_message(sdk.port, "/"), send_message(hub.port, f"/a2a/agents/{AGENT}", spec.admin_key)
            completes(direct)
            completes(through)
            for shape in shapes:
                pairs = []
                for i in range(rounds):
                    bench.step(f"{NAME}: {shape.label}, round {i + 1} of {rounds}: the a2a-sdk server, then the hub → agent → back")
                    pairs.append((bench.drive(sdk, direct, shape), bench.drive(hub, through, shape)))
                _add_rounds(bench, store, shape, pairs)
            _grpc_beside_jsonrpc(bench, store, hub, spec.admin_key, f"127.0.0.1:{grpc_port}", shapes)
        finally:
            agent.terminate()
            agent.wait(10)


def _add_rounds(bench: Bench, store: StoreProvider, shape: Shape, pairs: list[tuple[LoadResult, LoadResult]]) -> None:
    """The median round of each side as its load record, and the issue-27 ratio of each round's pair (the two sides
    of a round run back to back, so a change in this machine's speed moves both), their median against the target."""
    sdk = _median_round([d for d, _ in pairs])
    hub = _median_round([h for _, h in pairs])
    bench.add(LoadRecord(NAME, "—", "a2a-sdk server: SendMessage, completed with a message", sdk, notes=f"median round of {len(pairs)}"))
    check = None
    if shape.connections == CLIENTS:
        met = hub.p50_ms <= TARGET_P50_MS and hub.rps >= TARGET_PER_SECOND
        check = Check(f"p50 <= {TARGET_P50_MS:g} ms and >= {TARGET_PER_SECOND:,.0f} round trips/s", met)
    label = "SendMessage through the hub to an SDK-runtime agent and back"
    bench.add(LoadRecord(NAME, store.kind.value, label, hub, sdk, check, notes=f"median round of {len(pairs)}"))
    if shape.connections == 1:
        measure, ratios = "p50 at 1 client", [h.p50_ms / d.p50_ms for d, h in pairs]
        ratio = statistics.median(ratios)
        target = at_most(ratio, TARGET_P50_RATIO, f"≤ {TARGET_P50_RATIO:g}× the SDK's")
    else:
        measure, ratios = f"round trips/s at {shape.connections} clients", [h.rps / d.rps for d, h in pairs]
        ratio = statistics.median(ratios)
        target = at_least(ratio, TARGET_RPS_RATIO, f"≥ {TARGET_RPS_RATIO:g}× the SDK's")
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    what = f"{measure}, hub ÷ a2a-sdk server (median of paired rounds)"
    bench.add(ValueRecord(NAME, store.kind.value, what, ratio, "×", target, f"rounds: {rounds}"))


def _median_round(results: list[LoadResult]) -> LoadResult:
    return sorted(results, key=lambda r: r.p50_ms)[len(results) // 2]


def _grpc_beside_jsonrpc(bench: Bench, store: StoreProvider, hub: Server, key: str, target: str, shapes: list[Shape]) -> None:
    """The hub's round trip over gRPC, its ceiling the same round trip over JSON-RPC from the same generator."""
    card = httpx.get(f"http://127.0.0.1:{hub.port}/a2a/agents/{AGENT}/.well-known/agent-card.json").json()
    tenant = next(i["tenant"] for i in card["supportedInterfaces"] if i["protocolBinding"] == "GRPC")
    python, grpc = PythonLoad(), GrpcLoad()
    for shape in shapes:
        bench.step(f"{NAME}: hub SendMessage over JSON-RPC (Python generator), {shape.label}")
        jsonrpc = _measured(hub, lambda: python.run(send_message(hub.port, f"/a2a/agents/{AGENT}", key), shape))
        bench.add(LoadRecord(NAME, store.kind.value, "SendMessage round trip over JSON-RPC, Python generator", jsonrpc))
        bench.step(f"{NAME}: hub SendMessage over gRPC, {shape.label}")
        over_grpc = _measured(hub, lambda: grpc.run(GrpcCall(target, tenant, "tck-complete-task-bench", key), shape))
        bench.add(LoadRecord(NAME, store.kind.value, "SendMessage round trip over gRPC (ceiling: JSON-RPC, same generator)", over_grpc, jsonrpc))


def _measured(hub: Server, run: Callable[[], LoadResult]) -> LoadResult:
    """A load run with the CPU the hub spent in it (as ``Bench.drive`` measures its own generator's runs)."""
    before = hub.cpu_seconds()
    result = run()
    result.server_cpu_seconds = hub.cpu_seconds() - before
    return result
