"""The MCP door's fast path answers every request exactly as the SDK does: a corpus of requests (valid, invalid, edge
cases, protocol errors) is sent to a hub with the fast path and to one without it, over the same database, and each
pair of answers must match byte for byte (status, content type, body). The hub's metrics show which requests the
fast path kept, so the comparison cannot pass by the fast path serving nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from .hubproc import HubProcess
from .test_agent_channel import metric

VERSION = "2026-07-28"
FAST_SAMPLE = 'agora_mcp_requests_total{path="fast"}'
META = {
    "io.modelcontextprotocol/protocolVersion": VERSION,
    "io.modelcontextprotocol/clientInfo": {"name": "corpus", "version": "1"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, HubProcess]]:
    """Two hubs on one data directory (one SQLite database): the default one, and one whose SDK serves all of /mcp."""
    data = tmp_path_factory.mktemp("mcp-fast")
    fast = HubProcess(data).start()
    sdk = HubProcess(data, extra_args=["--no-mcp-fast-path"]).start()
    yield fast, sdk
    sdk.stop()
    fast.stop()


def request(method: str, params: dict[str, Any] | None = None, *, request_id: Any = 1, name: str | None = None) -> dict[str, Any]:
    """A stateless request with the headers the SDK's own client sends."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = {**params, "_meta": params.get("_meta", META)}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json", "Mcp-Protocol-Version": VERSION,
               "Mcp-Method": method}  # fmt: skip
    if name is not None:
        headers["Mcp-Name"] = name
    return {"content": json.dumps(body, ensure_ascii=False).encode(), "headers": headers}


def tool_call(tool: str, arguments: Any, **more: Any) -> dict[str, Any]:
    params = {"name": tool} if arguments is ... else {"name": tool, "arguments": arguments}
    return request("tools/call", params, name=tool, **more)


def retouched(case: dict[str, Any], headers: dict[str, str] | None = None, drop: tuple[str, ...] = (), body: bytes | None = None) -> dict[str, Any]:
    kept = {k: v for k, v in case["headers"].items() if k not in drop}
    return {"content": case["content"] if body is None else body, "headers": kept | (headers or {})}


def corpus(peer: str, foreign_agent: str) -> dict[str, tuple[dict[str, Any], str, str]]:
    """Request name -> (request, who sends it: admin or agent, who should answer it on the fast hub: fast or sdk)."""
    query = tool_call("agora.query.agents", {"capabilities": ["corpus"], "limit": 5})
    sent = tool_call("agora.messaging.send", {"to_agent": peer, "content": {"text": "héllo ☃"}, "idempotency_key": "corpus-1"})
    body = json.loads(query["content"])
    with_progress = request("tools/call", {"name": "agora.query.agents", "arguments": {}, "_meta": {**META, "progressToken": "p1"}}, name="agora.query.agents")
    return {
        # What the fast path keeps: answers that hold data, refusals of the tool, long calls, listings, resources.
        "tools/list": (request("tools/list", {}), "admin", "fast"),
        "tools/list, an agent's": (request("tools/list", {}), "agent", "fast"),
        "tools/call, a query": (query, "admin", "fast"),
        "tools/call, a string id": (tool_call("agora.query.agents", {"capabilities": ["corpus"]}, request_id="abc-1"), "admin", "fast"),
        "tools/call, no arguments": (tool_call("agora.query.agents", ...), "admin", "fast"),
        "tools/call, null arguments": (tool_call("agora.query.agents", None), "admin", "fast"),
        "tools/call, a schema with numbers": (tool_call("agora.discovery.schema", {"name": "agora.task.claim"}), "admin", "fast"),
        "tools/call, non-ASCII in and out (an idempotent send, answered from the first)": (sent, "agent", "fast"),
        "tools/call, invalid arguments (422 as isError)": (tool_call("agora.query.agents", {"limit": "many"}), "admin", "fast"),
        "tools/call, an unknown argument": (tool_call("agora.query.agents", {"nonsense": True}), "admin", "fast"),
        "tools/call, another tenant's agent (404 as isError)": (tool_call("agora.agents.get", {"agent": foreign_agent}), "agent", "fast"),
        "tools/call, admin only (403 as isError)": (tool_call("agora.admin.keys.list", {}), "agent", "fast"),
        "tools/call, a long-running tool": (tool_call("agora.messaging.receive", {"wait": 0}), "agent", "fast"),
        "resources/read": (request("resources/read", {"uri": "agora://services"}, name="agora://services"), "admin", "fast"),
        "resources/read, unknown": (request("resources/read", {"uri": "agora://nothing/here"}, name="agora://nothing/here"), "admin", "fast"),
        # What the fast path leaves to the SDK, answered by it on both hubs.
        "tools/call, unknown tool": (tool_call("agora.no.such", {}), "admin", "sdk"),
        "tools/call, progress asked for": (with_progress, "admin", "sdk"),
        "tools/call, name not a string": (request("tools/call", {"name": 7}, name="7"), "admin", "sdk"),
        "tools/call, Mcp-Name mismatch": (retouched(query, {"Mcp-Name": "agora.query.services"}), "admin", "sdk"),
        "tools/call, Mcp-Method mismatch": (retouched(query, {"Mcp-Method": "tools/list"}), "admin", "sdk"),
        "tools/call, no Mcp-Name": (retouched(query, drop=("Mcp-Name",)), "admin", "sdk"),
        "tools/call, header and _meta versions differ": (retouched(query, {"Mcp-Protocol-Version": "2026-07-29"}), "admin", "sdk"),
        "tools/call, an Mcp-Param header": (retouched(query, {"Mcp-Param-Limit": "5"}), "admin", "sdk"),
        "tools/call, Accept without event streams": (retouched(query, {"Accept": "application/json"}), "admin", "sdk"),
        "tools/call, not JSON content": (retouched(query, {"Content-Type": "text/plain"}), "admin", "sdk"),
        "tools/call, a foreign Host": (retouched(query, {"Host": "attacker.example"}), "admin", "sdk"),
        "tools/call, a foreign Origin": (retouched(query, {"Origin": "http://attacker.example"}), "admin", "sdk"),
        "not JSON": (retouched(query, body=b'{"jsonrpc": "2.0", "id": 1,'), "admin", "sdk"),
        "a batch": (retouched(query, body=json.dumps([body]).encode()), "admin", "sdk"),
        "a notification": (retouched(query, body=json.dumps({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {}}).encode()), "admin", "sdk"),
        "a boolean id": (retouched(query, body=json.dumps({**body, "id": True}).encode()), "admin", "sdk"),
        "an extra member": (retouched(query, body=json.dumps({**body, "extra": 1}).encode()), "admin", "sdk"),
        "ping (not a 2026-07-28 method)": (request("ping", {}), "admin", "sdk"),
        "server/discover": (request("server/discover", {}), "admin", "sdk"),
    }


def answer(hub: HubProcess, key: str, case: dict[str, Any], query: str = "") -> tuple[int, str | None, bytes]:
    headers = {"Authorization": f"Bearer {key}", **case["headers"]}
    response = httpx.post(f"{hub.url}/mcp{query}", content=case["content"], headers=headers, timeout=30)
    return response.status_code, response.headers.get("content-type"), response.content


def test_the_fast_path_answers_as_the_sdk(hubs: tuple[HubProcess, HubProcess]) -> None:
    fast, sdk = hubs
    with fast.client(fast.admin_key) as client:
        for i in range(3):
            client.post("/agora/agents/register", json={"agent_name": f"corpus-{i}", "capabilities": ["corpus"]}).raise_for_status()
        agent = client.post("/agora/agents/register", json={"agent_name": "corpus-agent"}).json()
        peer = client.post("/agora/agents/register", json={"agent_name": "corpus-peer"}).json()["agent_id"]
        tenant_key = client.post("/agora/admin/keys/create", json={"kind": "customer", "tenant": "elsewhere"}).json()["key"]
    with httpx.Client(base_url=fast.url, headers={"Authorization": f"Bearer {tenant_key}"}) as tenant:
        foreign = tenant.post("/agora/agents/register", json={"agent_name": "theirs"}).json()["agent_id"]
    # The send is answered from its idempotency key on both hubs (this first one made the message).
    with httpx.Client(base_url=fast.url, headers={"Authorization": f"Bearer {agent['agent_token']}"}) as me:
        me.post("/agora/messaging/send", json={"to_agent": peer, "content": {"text": "héllo ☃"}, "idempotency_key": "corpus-1"}).raise_for_status()

    keys = {"admin": fast.admin_key, "agent": agent["agent_token"]}
    cases = corpus(peer, foreign)
    for name, (case, who, expected) in cases.items():
        before = metric(fast, FAST_SAMPLE)
        via_fast, via_sdk = answer(fast, keys[who], case), answer(sdk, keys[who], case)
        assert via_fast == via_sdk, f"{name}: the fast path answered\n{via_fast!r}\nthe SDK\n{via_sdk!r}"
        served = "fast" if metric(fast, FAST_SAMPLE) > before else "sdk"
        assert served == expected, f"{name}: served by {served}, expected {expected}: {via_fast!r}"
    # Toolsets narrow the listing the same way on both.
    listing = request("tools/list", {})
    assert answer(fast, fast.admin_key, listing, "?toolsets=messaging") == answer(sdk, fast.admin_key, listing, "?toolsets=messaging")
    assert metric(sdk, FAST_SAMPLE) == 0


def test_a_refused_key_and_a_get_are_the_doors_and_the_sdks(hubs: tuple[HubProcess, HubProcess]) -> None:
    fast, sdk = hubs
    case = tool_call("agora.query.agents", {})
    for key in ("not-a-key", fast.admin_key):
        assert answer(fast, key, case)[0] == answer(sdk, key, case)[0]
    got = [httpx.get(f"{hub.url}/mcp", headers={"Authorization": f"Bearer {fast.admin_key}", "Mcp-Protocol-Version": VERSION}) for hub in hubs]
    assert got[0].status_code == got[1].status_code == 405
