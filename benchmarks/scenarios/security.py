"""security: the edge and the abuse controls under attack — header flood, slowloris, one key flooding, the limiter's cost, revocation across replicas."""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from ..bench import Bench, call_hub, hub_request
from ..load import LoadResult, Shape, StaticBody
from ..report import LoadRecord, ValueRecord, at_most
from ..servers import HubSpec, Server, hub_server, memory_kb
from ..stores import StoreKind, StoreProvider

NAME = "security"
FLOOD_CLIENTS = 20
FLOOD_BYTES = 100 * 1024 * 1024
TARGET_FLOOD_GROWTH_MIB = 20.0
SLOWLORIS_CONNECTIONS = 200
HEADER_TIMEOUT = 10.0  # the default of --header-timeout, measured as shipped
FLOOD_LIMIT = "customer.read=100/s:200"  # the flooding (customer) key's limit in the fairness run; agents: unrefusing
TARGET_P99_RATIO = 2.0
TARGET_LIMITER_COST = 0.05
COST_ROUNDS = 5
NO_LIMITS = ("--rate-limit", "agent.read=off,agent.write=off,customer.read=off,customer.write=off,anonymous=off")
REVOCATIONS = 10
TARGET_REVOCATION_SECONDS = 1.0
REDIS_URL = "redis://127.0.0.1:6379/0"


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    with hub_server(store.fresh()) as hub:
        _header_flood(bench, store, hub)
        _slowloris(bench, store, hub)
    _flooding_key(bench, store)
    _limiter_cost(bench, store)
    if store.kind is StoreKind.postgres:
        _revocation(bench, store)


def _rss_mib(pid: int) -> float:
    return memory_kb(pid)["VmRSS"] / 1024


def _header_flood(bench: Bench, store: StoreProvider, hub: Server) -> None:
    bench.step(f"{NAME}: {FLOOD_CLIENTS} clients at once, each sending 100 MB of request headers")
    assert hub.proc is not None
    pid = hub.proc.pid
    time.sleep(bench.profile.settle_seconds)
    before = _rss_mib(pid)
    peak = [before]
    refused: list[bool] = []

    def flood() -> None:
        with socket.create_connection(("127.0.0.1", hub.port)) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            chunk = b"a" * 65536
            try:
                for _ in range(FLOOD_BYTES // len(chunk)):
                    sock.sendall(chunk)
            except OSError:
                pass  # the hub cut the flood off (the point): its 431 is still readable
            sock.settimeout(5)
            try:
                refused.append(sock.recv(64).startswith(b"HTTP/1.1 431"))
            except OSError:
                refused.append(False)

    threads = [threading.Thread(target=flood) for _ in range(FLOOD_CLIENTS)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak.append(_rss_mib(pid))
        time.sleep(0.01)
    growth = max(peak) - before
    bench.add(ValueRecord(
        NAME, store.kind.value, f"RSS growth, {FLOOD_CLIENTS} × 100 MB header attempts", growth, "MiB",
        at_most(growth, TARGET_FLOOD_GROWTH_MIB, f"≤ {TARGET_FLOOD_GROWTH_MIB:g} MiB"),
        notes=f"{before:.0f} → peak {max(peak):.0f} MiB; {sum(refused)}/{FLOOD_CLIENTS} read their 431",
    ))  # fmt: skip


def _slowloris(bench: Bench, store: StoreProvider, hub: Server) -> None:
    bench.step(f"{NAME}: {SLOWLORIS_CONNECTIONS} slowloris connections, a header byte each second, for {HEADER_TIMEOUT + 2:g} s")
    socks = []
    for _ in range(SLOWLORIS_CONNECTIONS):
        sock = socket.create_connection(("127.0.0.1", hub.port))
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        socks.append(sock)
    started = time.monotonic()
    health_ms: list[float] = []
    while time.monotonic() - started < HEADER_TIMEOUT + 2:
        for sock in socks:
            try:
                sock.sendall(b"X")
            except OSError:
                pass  # already closed by the hub: counted below
        asked = time.perf_counter()
        httpx.get(f"http://127.0.0.1:{hub.port}/health", timeout=10)
        health_ms.append((time.perf_counter() - asked) * 1000)
        time.sleep(1)
    still_open = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            sock.recv(1)  # an answer (408) or the end of the stream: the hub let it go
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass  # reset by the hub: not open
        sock.close()
    bench.add(ValueRecord(
        NAME, store.kind.value, f"slowloris connections open after the {HEADER_TIMEOUT:g} s header timeout", still_open,
        "connections", at_most(still_open, 0, "0"),
        notes=f"of {SLOWLORIS_CONNECTIONS}; /health meanwhile answered in ≤ {max(health_ms):.1f} ms",
    ))  # fmt: skip


def _send_body(to: str) -> StaticBody:
    return StaticBody(json.dumps({"to_agent": to, "content": {"n": 1}}, separators=(",", ":")).encode())


def _flooding_key(bench: Bench, store: StoreProvider) -> None:
    spec = store.fresh()
    with hub_server(spec, "--rate-limit", FLOOD_LIMIT) as hub:
        flooder = call_hub(hub, spec.admin_key, "/agora/admin/keys/create", {"kind": "customer", "tenant": "flooders"})
        victim = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "bystander"})
        sink = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "sink"})
        quiet = hub_request(hub, victim["agent_token"], "/agora/messaging/send", _send_body(sink["agent_id"]))
        query = StaticBody(b'{"capabilities":["none"],"limit":10}')
        flood = hub_request(hub, flooder["key"], "/agora/query/agents", query)
        bench.step(f"{NAME}: an agent's sends, 1 connection, alone")
        alone = bench.drive(hub, quiet, bench.latency)
        bench.step(f"{NAME}: the same while a customer key ({FLOOD_LIMIT}) floods queries from {bench.profile.connections} connections")
        flooded: list[LoadResult] = []
        shape = Shape(bench.profile.connections, bench.latency.seconds + 1.0)
        flooding = threading.Thread(target=lambda: flooded.append(bench.generator.run(flood, shape)))
        flooding.start()
        time.sleep(0.5)
        during = bench.drive(hub, quiet, bench.latency)
        flooding.join()
    ratio = during.p99_ms / alone.p99_ms if alone.p99_ms else float("inf")
    refused = flooded[0].errors / flooded[0].requests if flooded and flooded[0].requests else 0.0
    bench.add(LoadRecord(
        NAME, store.kind.value, "an agent's sends while another key floods", during, None,
        at_most(ratio, TARGET_P99_RATIO, f"p99 ≤ {TARGET_P99_RATIO:g}× alone"),
        notes=f"p99 {during.p99_ms:.1f} ms vs {alone.p99_ms:.1f} ms alone = {ratio:.2f}×; the flood: "
        f"{flooded[0].rps:,.0f} req/s, {refused:.1%} answered 429" if flooded else "",
    ))  # fmt: skip


def _limiter_cost(bench: Bench, store: StoreProvider) -> None:
    """Single sends with the limiter on (limits too high to refuse: only its cost) and off, alternating."""
    runs: dict[str, list[LoadResult]] = {"on": [], "off": []}
    for round_ in range(COST_ROUNDS):
        for mode in ("on", "off") if round_ % 2 == 0 else ("off", "on"):
            spec = store.fresh()
            with hub_server(spec, *(NO_LIMITS if mode == "off" else ())) as hub:
                sender = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "sender"})
                sink = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "sink"})
                bench.step(f"{NAME}: single sends, limiter {mode}, round {round_ + 1}/{COST_ROUNDS}")
                request = hub_request(hub, sender["agent_token"], "/agora/messaging/send", _send_body(sink["agent_id"]))
                runs[mode].append(bench.drive(hub, request, bench.throughput))
    on = statistics.median(r.rps for r in runs["on"])
    off = statistics.median(r.rps for r in runs["off"])
    cpu_on = statistics.median(r.server_cpu_ms_per_request or 0.0 for r in runs["on"])
    cpu_off = statistics.median(r.server_cpu_ms_per_request or 0.0 for r in runs["off"])
    cost = 1 - on / off
    best_on = max(runs["on"], key=lambda r: r.rps)
    bench.add(LoadRecord(
        NAME, store.kind.value, "single sends, rate limiter on", best_on, max(runs["off"], key=lambda r: r.rps),
        at_most(cost, TARGET_LIMITER_COST, f"cost ≤ {TARGET_LIMITER_COST:.0%}"),
        notes=f"medians of {COST_ROUNDS} alternating runs: {on:,.0f}/s on, {off:,.0f}/s off (cost {cost:.1%}); hub CPU "
        f"{cpu_on:.3f} vs {cpu_off:.3f} ms/req; ×ceiling here is best on / best off",
    ))  # fmt: skip


def redis_missing(bench: Bench, name: str, what: str) -> bool:
    """Whether there is no Redis to run two replicas with (the step says so, and what is not measured)."""
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - no Redis: the step says why
        bench.step(f"{name}: no Redis at {REDIS_URL} ({exc}); {what} not measured")
        return True
    return False


@contextlib.contextmanager
def two_replicas(store: StoreProvider, *args: str) -> Iterator[tuple[Server, Server, str]]:
    """Two hubs (with ``args``) on one new PostgreSQL database, waking each other through Redis; their admin key."""
    spec = store.fresh()
    channel = ("--redis-url", REDIS_URL, "--redis-channel", f"agora:bench:{uuid.uuid4().hex[:8]}")
    second = HubSpec(Path(str(spec.data_dir) + "-b"), spec.database_url)
    second.data_dir.mkdir()
    with hub_server(spec, *channel, *args) as one:
        (second.data_dir / "admin.key").write_text(spec.admin_key)
        with hub_server(second, *channel, *args) as two:
            yield one, two, spec.admin_key


def _revocation(bench: Bench, store: StoreProvider) -> None:
    if redis_missing(bench, NAME, "revocation across replicas"):
        return
    bench.step(f"{NAME}: two replicas on PostgreSQL + Redis, a key revoked on one, polled on the other ({REVOCATIONS}×)")
    with two_replicas(store) as (one, two, admin_key):
        delays = [_one_revocation(one, two, admin_key) for _ in range(REVOCATIONS)]
    worst = max(delays)
    bench.add(ValueRecord(
        NAME, store.kind.value, "revoked key: first refusal on another replica", worst * 1000, "ms (worst)",
        at_most(worst, TARGET_REVOCATION_SECONDS, f"≤ {TARGET_REVOCATION_SECONDS:g} s"),
        notes=f"{REVOCATIONS} revocations, median {statistics.median(delays) * 1000:.1f} ms",
    ))  # fmt: skip


def _one_revocation(one: Server, two: Server, admin_key: str) -> float:
    created = call_hub(one, admin_key, "/agora/admin/keys/create", {"kind": "customer", "tenant": f"t-{uuid.uuid4().hex[:8]}"})
    key = created["key"]
    url = f"http://127.0.0.1:{two.port}/agora/query/agents"
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        client.get(url).raise_for_status()  # cached on the second replica
        call_hub(one, admin_key, "/agora/admin/keys/revoke", {"key_id": created["info"]["key_id"]})
        revoked = time.perf_counter()
        while client.get(url).status_code != 401:
            if time.perf_counter() - revoked > 30:
                raise RuntimeError("a revoked key still worked on the other replica after 30 s")
            time.sleep(0.002)
        return time.perf_counter() - revoked

