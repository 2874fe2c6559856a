"""mcp: stateless tools/call over Streamable HTTP: a trivial catalog tool against a minimal mcp-SDK server's trivial
tool; agora.messaging.send and agora.query.agents against the same calls over REST; and the SDK server's tool called
through the hub's gateway (``ext.ceiling.echo``) against calling it directly."""

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
TARGET_REST_RATIO = 0.7  # an MCP call ÷ the same call over REST
TARGET_SDK_RATIO = 2.0  # a trivial catalog tool over MCP ÷ the minimal SDK server's trivial tool
TRIVIAL = ("agora.discovery.schema", {"name": "agora.messaging.unsubscribe"})  # in memory, a ~500-byte answer
TARGET_GATEWAY_RATIO = 0.5  # a gatewayed call ÷ calling the upstream directly
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
            _trivial(bench, hub, spec.admin_key, ceilings, store)
            _send(bench, hub, spec.admin_key, ceilings, store)
            for i in range(AGENTS):
                call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": f"mcp-bench-{i}", "capabilities": ["mcp-bench"]})
            auth = {"Authorization": f"Bearer {spec.admin_key}"}
            bench.step(f"{NAME}: REST POST /agora/query/agents, {bench.throughput.label} (what the tool costs without MCP)")
            body = StaticBody(json.dumps(QUERY).encode())
            rest = bench.drive(hub, hub_request(hub, spec.admin_key, "/agora/query/agents", body), bench.throughput)
            bench.add(LoadRecord(NAME, store.kind.value, "REST POST /agora/query/agents, same query", rest, ceilings[bench.throughput]))
            for shape in shapes:
                bench.step(f"{NAME}: hub tools/call agora.query.agents over /mcp, {shape.label}")
                result = bench.drive(hub, tools_call(hub.port, "agora.query.agents", QUERY, auth), shape)
                ratio = result.rps / rest.rps if rest.rps else 0.0
                check = at_least(ratio, TARGET_REST_RATIO, f">= {TARGET_REST_RATIO}x over REST") if shape == bench.throughput else None
                notes = f"{ratio:.2f}x the same query over REST" if shape == bench.throughput else ""
                bench.add(LoadRecord(NAME, store.kind.value, "tools/call agora.query.agents (10 of 50 agents)", result, ceilings[shape], check, notes))
            _oauth(bench, hub, spec.admin_key, ceilings[bench.throughput], store)
            _gateway(bench, hub, upstream, spec.admin_key, ceilings, store)


def _over_mcp(bench: Bench, hub: Server, key: str, call: tuple[str, dict[str, Any]], label: str, against: dict[Shape, LoadResult],
              target: tuple[float, str], store: StoreProvider) -> None:  # fmt: skip
    """tools/call on the hub's /mcp at 1 and N connections, each row against ``against``; the N-connection one checked
    to be at least ``target`` times it."""
    tool, arguments = call
    for shape in [bench.latency, bench.throughput]:
        bench.step(f"{NAME}: hub tools/call {tool} over /mcp, {shape.label}")
        result = bench.drive(hub, tools_call(hub.port, tool, arguments, {"Authorization": f"Bearer {key}"}), shape)
        check = None
        if shape == bench.throughput:
            check = at_least(result.rps / against[shape].rps if against[shape].rps else 0.0, target[0], f">= {target[0]}x {target[1]}")
        bench.add(LoadRecord(NAME, store.kind.value, label, result, against[shape], check))


def _trivial(bench: Bench, hub: Server, admin_key: str, ceilings: dict[Shape, LoadResult], store: StoreProvider) -> None:
    """A catalog tool that does next to nothing, against the SDK server's trivial tool: the door against the door."""
    label = f"tools/call {TRIVIAL[0]} (a trivial tool)"
    _over_mcp(bench, hub, admin_key, TRIVIAL, label, ceilings, (TARGET_SDK_RATIO, "the mcp SDK server"), store)


def _send(bench: Bench, hub: Server, admin_key: str, ceilings: dict[Shape, LoadResult], store: StoreProvider) -> None:
    """One message sent by an agent to another, over REST and as an MCP tools/call with the agent's key."""
    sender = call_hub(hub, admin_key, "/agora/agents/register", {"agent_name": "mcp-sender"})
    receiver = call_hub(hub, admin_key, "/agora/agents/register", {"agent_name": "mcp-receiver"})
    message = {"to_agent": receiver["agent_id"], "content": {"text": "hello", "n": 1}, "message_type": "info"}
    key = sender["agent_token"]
    bench.step(f"{NAME}: REST POST /agora/messaging/send as an agent, {bench.throughput.label}")
    rest = bench.drive(hub, hub_request(hub, key, "/agora/messaging/send", StaticBody(json.dumps(message).encode())), bench.throughput)
    bench.add(LoadRecord(NAME, store.kind.value, "REST POST /agora/messaging/send as an agent", rest, ceilings[bench.throughput]))
    for shape in [bench.latency, bench.throughput]:
        bench.step(f"{NAME}: hub tools/call agora.messaging.send over /mcp as an agent, {shape.label}")
        result = bench.drive(hub, tools_call(hub.port, "agora.messaging.send", message, {"Authorization": f"Bearer {key}"}), shape)
        check, notes = None, ""
        if shape == bench.throughput:
            ratio = result.rps / rest.rps if rest.rps else 0.0
            check, notes = at_least(ratio, TARGET_REST_RATIO, f">= {TARGET_REST_RATIO}x over REST"), f"{ratio:.2f}x the same send over REST"
        bench.add(LoadRecord(NAME, store.kind.value, "tools/call agora.messaging.send as an agent", result, ceilings[shape], check, notes))


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
    label = f"gatewayed: tools/call {tool} on the hub (÷ calling it directly)"
    _over_mcp(bench, hub, key, (tool, ECHO), label, direct, (TARGET_GATEWAY_RATIO, "calling it directly"), store)
    bench.step(f"{NAME}: POST /ext/{GATEWAYED_SERVER}/{mcp_ceiling_app.TOOL} over REST, {bench.throughput.label}")
    body = StaticBody(json.dumps(ECHO).encode())
    rest = bench.drive(hub, hub_request(hub, key, f"/ext/{GATEWAYED_SERVER}/{mcp_ceiling_app.TOOL}", body), bench.throughput)
    bench.add(LoadRecord(NAME, store.kind.value, "gatewayed over REST (÷ calling it directly over MCP)", rest, direct[bench.throughput]))
