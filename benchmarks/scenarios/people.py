"""people: what a person costs — an identity provider's JWT access token against an API key of the same role, row-level
security on PostgreSQL against none, and a removed person's first refusal on another replica."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.sso_provider import Provider, access_token

from ..bench import Bench, call_hub, hub_request
from ..load import LoadResult, StaticBody
from ..report import LoadRecord, ValueRecord, at_most
from ..servers import Server, hub_server
from ..stores import StoreKind, StoreProvider
from .mcp import tools_call
from .security import redis_missing, two_replicas

NAME = "people"
ROUNDS = 3
TARGET_JWT_COST = 0.10  # hub CPU per call, JWT over key
TARGET_RLS_COST = 0.05  # hub CPU per call, row-level security over none
TARGET_REMOVAL_SECONDS = 1.0
REMOVALS = 5


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    with tempfile.TemporaryDirectory(prefix="agora-bench-idp-") as workdir:
        provider = Provider("http://127.0.0.1:9").start(Path(workdir))  # only its tokens are used: no console redirect
        try:
            _jwt_cost(bench, store, provider)
            if store.kind is StoreKind.postgres:
                _row_security_cost(bench, store)
                _removal(bench, store, provider)
        finally:
            provider.stop()


def _jwt_cost(bench: Bench, store: StoreProvider, provider: Provider) -> None:
    """Single sends over REST and a query over MCP, as oscar (operator) with the provider's token and with an API key
    of the operator role: alternating rounds, hub CPU per call."""
    spec = store.fresh()
    with hub_server(spec, *provider.hub_args()) as hub:
        token = access_token(provider, "oscar")
        keys = {
            role: call_hub(hub, spec.admin_key, "/agora/admin/keys/create", {"kind": "customer", "tenant": "acme", "role": role})["key"]
            for role in ("operator", "developer")
        }
        key = keys["operator"]
        sink = call_hub(hub, keys["developer"], "/agora/agents/register", {"agent_name": "sink"})  # in oscar's tenant
        send = StaticBody(json.dumps({"to_agent": sink["agent_id"], "content": {"n": 1}}, separators=(",", ":")).encode())
        calls = {
            "single send (REST)": lambda credential: hub_request(hub, credential, "/agora/messaging/send", send),
            "tools/call agora.agents.list (MCP)": lambda credential: tools_call(
                hub.port, "agora.agents.list", {"limit": 10}, {"Authorization": f"Bearer {credential}"}
            ),
        }
        for label, request in calls.items():
            runs = _alternate(bench, f"{label} with an API key or a JWT access token", {"key": (hub, request(key)), "token": (hub, request(token))})
            _record(bench, store, f"{label}, JWT access token", runs, "token", "key", TARGET_JWT_COST, "a key's")


def _row_security_cost(bench: Bench, store: StoreProvider) -> None:
    """The same calls on two hubs, each on a database of its own: one working as the role row-level security binds
    (the default), one as the tables' owner (``--no-pg-row-security``). Alternating rounds, hub CPU per call."""
    specs = {"on": store.fresh(), "off": store.fresh()}
    with hub_server(specs["on"]) as on, hub_server(specs["off"], "--no-pg-row-security") as off:
        hubs = {"on": on, "off": off}
        calls: dict[str, dict[str, Any]] = {"single send (REST)": {}, "search agora.messaging.search (REST)": {}}
        for mode, hub in hubs.items():
            key = call_hub(hub, specs[mode].admin_key, "/agora/admin/keys/create", {"kind": "customer", "tenant": "acme"})["key"]
            sink = call_hub(hub, key, "/agora/agents/register", {"agent_name": "sink"})
            message = {"to_agent": sink["agent_id"], "content": {"n": 1}}
            for _ in range(200):  # something for the search to find
                call_hub(hub, key, "/agora/messaging/send", message)
            send = StaticBody(json.dumps(message, separators=(",", ":")).encode())
            calls["single send (REST)"][mode] = hub_request(hub, key, "/agora/messaging/send", send)
            search = StaticBody(json.dumps({"limit": 20}).encode())
            calls["search agora.messaging.search (REST)"][mode] = hub_request(hub, key, "/agora/messaging/search", search)
        for label, requests in calls.items():
            for spec in specs.values():  # both planned on statistics, as autovacuum keeps them (this server may not)
                store.analyze(spec)
            runs = _alternate(bench, f"{label} with row-level security on or off", {m: (hubs[m], requests[m]) for m in hubs})
            _record(bench, store, f"{label}, row-level security", runs, "on", "off", TARGET_RLS_COST, "the owner's, unbound")


def _alternate(bench: Bench, label: str, arms: dict[str, tuple[Server, Any]]) -> dict[str, list[LoadResult]]:
    """``ROUNDS`` runs of each arm, alternating which goes first."""
    runs: dict[str, list[LoadResult]] = {mode: [] for mode in arms}
    order = list(arms)
    for round_ in range(ROUNDS):
        for mode in order if round_ % 2 == 0 else order[::-1]:
            bench.step(f"{NAME}: {label}: {mode}, round {round_ + 1}/{ROUNDS}")
            hub, request = arms[mode]
            runs[mode].append(bench.drive(hub, request, bench.throughput))
    return runs


def _record(bench: Bench, store: StoreProvider, label: str, runs: dict[str, list[LoadResult]], new: str, base: str, target: float, of: str) -> None:
    cpu = {mode: statistics.median(r.server_cpu_ms_per_request or 0.0 for r in results) for mode, results in runs.items()}
    cost = cpu[new] / cpu[base] - 1 if cpu[base] else float("inf")
    bench.add(LoadRecord(
        NAME, store.kind.value, label, max(runs[new], key=lambda r: r.rps), max(runs[base], key=lambda r: r.rps),
        at_most(cost, target, f"hub CPU ≤ +{target:.0%} of {of}"),
        notes=f"medians of {ROUNDS} alternating runs: hub CPU {cpu[new]:.3f} ms/call {new}, {cpu[base]:.3f} {base} ({cost:+.1%}); "
        f"×ceiling here is best {new} / best {base}",
    ))  # fmt: skip


def _removal(bench: Bench, store: StoreProvider, provider: Provider) -> None:
    if redis_missing(bench, NAME, "removal across replicas"):
        return
    bench.step(f"{NAME}: two replicas on PostgreSQL + Redis, a person removed on one, their token polled on the other ({REMOVALS}×)")
    with two_replicas(store, *provider.hub_args()) as (one, two, admin_key):
        delays = [_one_removal(one, two, admin_key, provider) for _ in range(REMOVALS)]
    worst = max(delays)
    bench.add(ValueRecord(
        NAME, store.kind.value, "removed person: first refusal of their token on another replica", worst * 1000, "ms (worst)",
        at_most(worst, TARGET_REMOVAL_SECONDS, f"≤ {TARGET_REMOVAL_SECONDS:g} s"),
        notes=f"{REMOVALS} removals, median {statistics.median(delays) * 1000:.1f} ms",
    ))  # fmt: skip


def _one_removal(one: Server, two: Server, admin_key: str, provider: Provider) -> float:
    token = access_token(provider, "alice")
    url = f"http://127.0.0.1:{two.port}/agora/users/me"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        client.get(url).raise_for_status()  # cached on the second replica
        call_hub(one, admin_key, "/agora/users/remove", {"user": "alice@acme.example"})
        removed = time.perf_counter()
        while client.get(url).status_code != 401:
            if time.perf_counter() - removed > 30:
                raise RuntimeError("a removed person's token still worked on the other replica after 30 s")
            time.sleep(0.002)
        elapsed = time.perf_counter() - removed
    call_hub(one, admin_key, "/agora/users/create", {"email": "alice@acme.example", "role": "viewer", "tenant": "acme"})
    return elapsed
