"""mcp: tools/call of agora.query.agents over Streamable HTTP against a minimal mcp-SDK server's trivial tool, and
the same trivial tool called through the hub's gateway (``ext.ceiling.echo``) against calling it directly."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .. import mcp_ceiling_app
from ..bench import Bench, call_hub, hub_request
from ..load import LoadResult, Request, Shape, StaticBody
from ..report import LoadRecord, at_least
from ..servers import Server, hub_server
from ..stores import StoreProvider

NAME = "mcp"
TARGET_CALLS_PER_SECOND = 1000.0
TARGET_RATIO = 0.5
AGENTS = 50  # registered before the run, so the query returns a page of real rows
QUERY = {"capabilities": ["mcp-bench"], "limit": 10}
PROTOCOL = "2026-07-28"  # stateless: one POST per call, no session to set up first
ECHO = {"text": "hello"}
GATEWAYED_SERVER = "ceiling"  # the ceiling server, registered with the hub: its tool is ext.ceiling.echo


def tools_call(port: int, tool: str, arguments: dict[str, Any], headers: dict[str, str] | None = None) -> Request:
    """One stateless MCP ``tools/call`` as the SDK's own client sends it (headers and ``_meta`` included)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientInfo": {"name": "agora-bench", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments, "_meta": meta}}
    mcp_headers = {
        "Accept": "application/json, text/event-stream",
        "Mcp-Protocol-Version": PROTOCOL,
        "Mcp-Method": "tools/call",
        "Mcp-Name": tool,
    }
    return Request(port, "/mcp", StaticBody(json.dumps(body).encode()), mcp_headers | (headers or {}))


def _ceiling(bench: Bench, server: Server, shapes: list[Shape]) -> dict[Shape, LoadResult]:
    results = {}
    for shape in shapes:
        bench.step(f"{NAME}: ceiling, mcp SDK server tools/call {mcp_ceiling_app.TOOL}, {shape.label}")
        results[shape] = result = bench.drive(server, tools_call(server.port, mcp_ceiling_app.TOOL, ECHO), shape)
        bench.add(LoadRecord(NAME, "—", f"mcp SDK minimal server: tools/call {mcp_ceiling_app.TOOL}", result))
    return results


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    shapes = [bench.latency, bench.throughput]
    with Server([sys.executable, "-m", "benchmarks.mcp_ceiling_app"], log_path=spec.data_dir / "mcp-ceiling.log") as upstream:
        ceilings = _ceiling(bench, upstream, shapes)
        with hub_server(spec) as hub:
            for i in range(AGENTS):
                call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": f"mcp-bench-{i}", "capabilities": ["mcp-bench"]})
            auth = {"Authorization": f"Bearer {spec.admin_key}"}
            for shape in shapes:
                bench.step(f"{NAME}: hub tools/call agora.query.agents over /mcp, {shape.label}")
                result = bench.drive(hub, tools_call(hub.port, "agora.query.agents", QUERY, auth), shape)
                ceiling = ceilings[shape]
                check = None
                if shape == bench.throughput:
                    ratio = result.rps / ceiling.rps if ceiling.rps else 0.0
                    check = at_least(min(result.rps / TARGET_CALLS_PER_SECOND, ratio / TARGET_RATIO), 1.0,
                                     f">= {TARGET_CALLS_PER_SECOND:,.0f} calls/s and >= {TARGET_RATIO}x the mcp SDK server")  # fmt: skip
                bench.add(LoadRecord(NAME, store.kind.value, "tools/call agora.query.agents (10 of 50 agents)", result, ceiling, check))
            _oauth(bench, hub, spec.admin_key, ceilings[bench.throughput], store)
            bench.step(f"{NAME}: the same query over REST, {bench.throughput.label} (what the tool costs without MCP)")
            rest = bench.drive(hub, hub_request(hub, spec.admin_key, "/agora/query/agents", StaticBody(json.dumps(QUERY).encode())), bench.throughput)
            bench.add(LoadRecord(NAME, store.kind.value, "REST POST /agora/query/agents, same query", rest, ceilings[bench.throughput]))
            _gateway(bench, hub, upstream, spec.admin_key, ceilings, store)


def _oauth(bench: Bench, hub: Server, admin_key: str, ceiling: LoadResult, store: StoreProvider) -> None:
    """The same call made by a tenant, with its API key and then with an OAuth access token granted for that key."""
    key = call_hub(hub, admin_key, "/agora/admin/keys/create", {"kind": "customer", "tenant": "default"})["key"]
    for label, bearer in (("a tenant's API key", key), ("an OAuth access token for it", oauth_token(hub, key))):
        bench.step(f"{NAME}: tools/call agora.query.agents with {label}, {bench.throughput.label}")
        result = bench.drive(hub, tools_call(hub.port, "agora.query.agents", QUERY, {"Authorization": f"Bearer {bearer}"}), bench.throughput)
        bench.add(LoadRecord(NAME, store.kind.value, f"tools/call agora.query.agents with {label}", result, ceiling))


def oauth_token(hub: Server, key: str) -> str:
    """An access token got as an MCP client gets one: register, authorize with PKCE, approve with ``key``, exchange."""
    base, redirect = f"http://127.0.0.1:{hub.port}", "http://127.0.0.1:9/callback"
    client = httpx.post(f"{base}/register", json={"redirect_uris": [redirect], "token_endpoint_auth_method": "none"}).json()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect, "code_challenge": challenge,
             "code_challenge_method": "S256"}  # fmt: skip
    consent = httpx.get(f"{base}/authorize", params=query, follow_redirects=True)
    request = parse_qs(urlsplit(str(consent.url)).query)["request"][0]
    approved = httpx.post(f"{base}/ui/oauth/authorize", data={"request": request, "key": key, "decision": "allow"})
    code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
    exchange = {"grant_type": "authorization_code", "code": code, "client_id": client["client_id"], "redirect_uri": redirect, "code_verifier": verifier}
    token: str = httpx.post(f"{base}/token", data=exchange).raise_for_status().json()["access_token"]
    return token


def _gateway(bench: Bench, hub: Server, upstream: Server, key: str, direct: dict[Shape, LoadResult], store: StoreProvider) -> None:
    """The ceiling server registered with the hub: its tool called through the hub, against calling it directly."""
    url = f"http://127.0.0.1:{upstream.port}/mcp"
    call_hub(hub, key, "/agora/mcp_servers/register", {"name": GATEWAYED_SERVER, "url": url})
    tool = f"ext.{GATEWAYED_SERVER}.{mcp_ceiling_app.TOOL}"
    auth = {"Authorization": f"Bearer {key}"}
    for shape in [bench.latency, bench.throughput]:
        bench.step(f"{NAME}: tools/call {tool} through the hub's /mcp, {shape.label}")
        result = bench.drive(hub, tools_call(hub.port, tool, ECHO, auth), shape)
        bench.add(LoadRecord(NAME, store.kind.value, f"gatewayed: tools/call {tool} on the hub (÷ calling it directly)", result, direct[shape]))
    bench.step(f"{NAME}: POST /ext/{GATEWAYED_SERVER}/{mcp_ceiling_app.TOOL} over REST, {bench.throughput.label}")
    body = StaticBody(json.dumps(ECHO).encode())
    rest = bench.drive(hub, hub_request(hub, key, f"/ext/{GATEWAYED_SERVER}/{mcp_ceiling_app.TOOL}", body), bench.throughput)
    bench.add(LoadRecord(NAME, store.kind.value, "gatewayed over REST (÷ calling it directly over MCP)", rest, direct[bench.throughput]))
