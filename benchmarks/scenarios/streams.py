"""streams: send → WebSocket delivery latency at 500 messages/s, a message's round trip through an SDK runtime's
handler and back (its WebSocket channel, and HTTP), and broadcast fan-out to 100 WebSocket subscribers (batch frames,
as the SDK asks for them)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ..bench import Bench, call_hub
from ..report import ValueRecord, at_least, at_most
from ..servers import ROOT, Server, hub_server
from ..stores import StoreProvider
from ..stream_client import DRAIN_SECONDS

NAME = "streams"
RATE = 500
TARGET_P50_MS, TARGET_P99_MS = 2.0, 10.0
TARGET_ECHO_P50_MS = 3.0
SUBSCRIBERS, CLIENT_PROCESSES = 100, 4
TARGET_DELIVERIES = 50_000
BROADCASTS_PER_CALL = 50


def _percentile(values: list[float], q: float, missing: int = 0) -> float:
    """The nearest-rank ``q`` quantile, ``missing`` values (frames that never came) counting as infinitely late."""
    ranked = sorted(values) + [math.inf] * missing
    return ranked[max(0, math.ceil(q * len(ranked)) - 1)]


def _arrived(result: dict[str, Any]) -> str:
    """How many of the messages' frames came (those missing count as infinitely late in the percentiles)."""
    came = result["messages"] - result["unanswered"]
    late = f" ({result['unanswered']:,} still missing {DRAIN_SECONDS} s after the last send)" if result["unanswered"] else ""
    return f"{came:,} of {result['messages']:,} frames{late}"


def _client(*args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.stream_client", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "stream client did not start"
    return proc


def _finish(proc: subprocess.Popen[str], out: Path) -> dict[str, Any]:
    if proc.wait(120) != 0:
        raise RuntimeError("stream client failed")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _latency(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path) -> None:
    sender = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "latency-sender"})
    receiver = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "latency-receiver"})
    seconds = bench.profile.latency_seconds * 2
    bench.step(f"{NAME}: send → WebSocket at {RATE} messages/s for {seconds:.0f}s")
    out = tmp / "latency.json"
    cpu = hub.cpu_seconds()
    proc = _client("latency", str(hub.port), sender["agent_token"], receiver["agent_token"], receiver["agent_id"], str(RATE), str(seconds), str(out))
    result = _finish(proc, out)
    cores = (hub.cpu_seconds() - cpu) / result["elapsed"]
    delivery, send, missing = result["delivery_ms"], result["send_ms"], result["unanswered"]
    notes = f"{_arrived(result)}; send HTTP p50 {_percentile(send, 0.5):.2f} ms, p99 {_percentile(send, 0.99):.2f} ms; hub {cores:.2f} cores"
    p50, p99 = _percentile(delivery, 0.5, missing), _percentile(delivery, 0.99, missing)
    bench.add(ValueRecord(NAME, store.kind.value, f"send → WS frame p50 at {RATE}/s", p50, "ms", at_most(p50, TARGET_P50_MS, f"≤ {TARGET_P50_MS:g} ms"), notes))
    bench.add(ValueRecord(NAME, store.kind.value, f"send → WS frame p99 at {RATE}/s", p99, "ms", at_most(p99, TARGET_P99_MS, f"≤ {TARGET_P99_MS:g} ms")))


def _echo(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path) -> None:
    """A message to an SDK runtime whose handler replies, and the reply back on the sender's WebSocket."""
    sender = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "echo-sender"})
    seconds = bench.profile.latency_seconds * 2
    for channel in (True, False):
        name = f"echo-{'ws' if channel else 'http'}"
        how = "its WebSocket channel" if channel else "HTTP (receive and send)"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
        env |= {"AGORA_URL": f"http://127.0.0.1:{hub.port}", "AGORA_API_KEY": admin, "BENCH_AGENT_NAME": name, "BENCH_CHANNEL": "1" if channel else "0"}
        agent = subprocess.Popen([sys.executable, "-m", "benchmarks.echo_agent"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            echo_id = _when_present(hub, admin, name)
            bench.step(f"{NAME}: send → SDK runtime ({how}) → reply → sender's WS, at {RATE}/s for {seconds:.0f}s")
            out = tmp / "echo.json"
            cpu = hub.cpu_seconds()
            result = _finish(_client("echo", str(hub.port), sender["agent_token"], echo_id, str(RATE), str(seconds), str(out)), out)
            cores = (hub.cpu_seconds() - cpu) / result["elapsed"]
        finally:
            agent.terminate()
            agent.wait(10)
        trip, missing = result["delivery_ms"], result["unanswered"]
        p50, p99 = _percentile(trip, 0.5, missing), _percentile(trip, 0.99, missing)
        check = at_most(p50, TARGET_ECHO_P50_MS, f"≤ {TARGET_ECHO_P50_MS:g} ms") if channel else None
        bench.add(ValueRecord(NAME, store.kind.value, f"message → runtime handler → reply, over {how}, p50 at {RATE}/s", p50, "ms", check,
                              f"p99 {p99:.2f} ms; {_arrived(result)}; hub {cores:.2f} cores"))


def _when_present(hub: Server, admin: str, name: str) -> str:
    """The agent's id once it is registered and its runtime has had a moment to connect."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = httpx.get(f"http://127.0.0.1:{hub.port}/agora/agents/get", params={"agent": name}, headers={"Authorization": f"Bearer {admin}"})
        if found.status_code == 200:
            time.sleep(1.0)
            return str(found.json()["agent_id"])
        time.sleep(0.1)
    raise RuntimeError(f"the benchmark's echo agent {name} did not come up")


def _fan_out(url: str, tokens: list[str], seconds: float, tmp: Path, start_load: Any) -> tuple[float, float]:
    """Connect the subscribers from CLIENT_PROCESSES processes, run the load, return (deliveries/s, client cores)."""
    procs, outs = [], []
    share = len(tokens) // CLIENT_PROCESSES
    for i in range(CLIENT_PROCESSES):
        tokens_file, out = tmp / f"tokens{i}.txt", tmp / f"fanout{i}.json"
        tokens_file.write_text("\n".join(tokens[i * share : (i + 1) * share]))
        procs.append(_client("fanout", url, str(tokens_file), str(seconds), str(out)))
        outs.append(out)
    stop = threading.Event()
    loader = threading.Thread(target=start_load, args=(stop,), daemon=True)
    loader.start()
    results = [_finish(p, o) for p, o in zip(procs, outs)]
    stop.set()
    loader.join(30)
    deliveries = sum(r["deliveries"] for r in results)
    return deliveries / seconds, sum(r["cpu_seconds"] for r in results) / seconds


def _fanout(bench: Bench, store: StoreProvider, hub: Server, admin: str, tmp: Path) -> None:
    seconds = bench.profile.load_seconds
    bench.step(f"{NAME}: register {SUBSCRIBERS} subscribers and a sender")
    tokens = [call_hub(hub, admin, "/agora/agents/register", {"agent_name": f"sub-{i}"})["agent_token"] for i in range(SUBSCRIBERS)]
    sender = call_hub(hub, admin, "/agora/agents/register", {"agent_name": "broadcaster"})
    batch = {"messages": [{"to_agent": "broadcast", "content": {"text": "hello", "n": n}} for n in range(BROADCASTS_PER_CALL)]}
    sent = [0]

    def load(stop: threading.Event) -> None:
        headers = {"Authorization": f"Bearer {sender['agent_token']}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers=headers, timeout=30) as client:
            while not stop.is_set():
                client.post("/agora/messaging/send_batch", json=batch).raise_for_status()
                sent[0] += BROADCASTS_PER_CALL

    bench.step(f"{NAME}: broadcasts (send_batch of {BROADCASTS_PER_CALL}) to {SUBSCRIBERS} WebSockets for {seconds:.0f}s")
    cpu = hub.cpu_seconds()
    started = time.perf_counter()
    rate, client_cores = _fan_out(f"ws://127.0.0.1:{hub.port}/ws?types=broadcast_message&batch=1", tokens, seconds, tmp, load)
    cores = (hub.cpu_seconds() - cpu) / (time.perf_counter() - started)
    ceiling = _ceiling(bench, seconds, tmp)
    notes = f"{sent[0] / seconds:,.0f} broadcasts/s sent; hub {cores:.2f} cores, clients {client_cores:.2f} cores; {rate / ceiling:.2f}× the bare WebSocket ceiling ({ceiling:,.0f}/s)"
    bench.add(ValueRecord(NAME, store.kind.value, f"broadcast deliveries/s to {SUBSCRIBERS} WebSockets", rate, "/s",
                          at_least(rate, TARGET_DELIVERIES, f"≥ {TARGET_DELIVERIES:,}/s"), notes))


def _ceiling(bench: Bench, seconds: float, tmp: Path) -> float:
    bench.step(f"{NAME}: ceiling — a bare Starlette WebSocket app pushing the same frames to {SUBSCRIBERS} clients")
    with Server([sys.executable, "-m", "benchmarks.ws_ceiling_app"], log_path=tmp / "ws-ceiling.log") as server:

        def load(stop: threading.Event) -> None:
            while not stop.is_set():
                httpx.post(f"http://127.0.0.1:{server.port}/blast?frames=200", timeout=120)

        rate, _ = _fan_out(f"ws://127.0.0.1:{server.port}/ws", ["-"] * SUBSCRIBERS, seconds, tmp, load)
    bench.add(ValueRecord(NAME, "—", f"bare WebSocket fan-out to {SUBSCRIBERS} clients (ceiling)", rate, "/s"))
    return rate


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    with tempfile.TemporaryDirectory(prefix="agora-bench-streams-") as tmp, hub_server(spec) as hub:
        _latency(bench, store, hub, spec.admin_key, Path(tmp))
        _echo(bench, store, hub, spec.admin_key, Path(tmp))
        _fanout(bench, store, hub, spec.admin_key, Path(tmp))
