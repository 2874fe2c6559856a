"""Every class of bad input gets the one error shape with a precise code and message, never a 500, and loses nothing."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field as default
from typing import Any, Iterator

import httpx
import pytest

from .conftest import call, expect_error, fresh_postgres_url, ok, unique
from .hubproc import HubProcess

LIMIT = 1024 * 1024  # the hub's default body limit


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Case:
    """One bad request and exactly what the hub must answer."""

    id: str
    method: str
    path: str
    status: int
    code: str
    json: Any = None
    content: bytes | None = None
    data: dict[str, str] | None = None
    params: Any = None
    headers: dict[str, str] = default(default_factory=dict)
    field: str | None = None  # the field the error must name
    message: str | None = None  # a text the message must contain
    details: dict[str, Any] = default(default_factory=dict)  # entries details must contain
    allow: str | None = None  # the Allow header of a 405

    def send(self, client: httpx.Client) -> httpx.Response:
        kwargs: dict[str, Any] = {"headers": self.headers, "params": self.params}
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.data is not None:
            kwargs["data"] = self.data
        elif self.json is not None:
            kwargs["content"] = json.dumps(self.json).encode()
            kwargs["headers"] = {**JSON, **self.headers}
        return client.request(self.method, self.path, **kwargs)

    def check(self, response: httpx.Response) -> None:
        error = expect_error(response, self.status, self.code)
        if self.field is not None:
            named = [e["field"] for e in error["details"].get("errors", [])] + [error["details"].get("field")]
            assert self.field in named, f"{self.field!r} not named in {error}"
            assert self.field.split(".")[0] in error["message"], error
        if self.message is not None:
            assert self.message.lower() in error["message"].lower(), error
        for key, value in self.details.items():
            assert error["details"].get(key) == value, error
        if self.allow is not None:
            assert response.headers.get("Allow") == self.allow, response.headers


REGISTER = "/agora/agents/register"
QUERY = "/agora/query/agents"

CASES = [
    # Unknown fields: 422, naming the field, at any depth and through every door.
    Case("unknown-field", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "colour": "red"}, field="colour"),
    Case("unknown-nested-field", "POST", REGISTER, 422, "invalid_argument",
         json={"agent_name": "fine", "manifest": {"build_config": {"type": "python", "colour": 1}}}, field="manifest.build_config.colour"),
    Case("unknown-field-typo", "POST", QUERY, 422, "invalid_argument", json={"capability": ["x"]}, field="capability"),
    Case("unknown-field-no-arg-tool", "POST", "/agora/query/marketplace", 422, "invalid_argument", json={"x": 1}, field="x"),
    Case("unknown-field-alias", "POST", "/agents/register", 422, "invalid_argument", json={"agent_name": "fine", "name": "y"}, field="name"),
    Case("unknown-query-param", "GET", QUERY, 422, "invalid_argument", params={"capability": "x"}, field="capability"),
    # Wrong types: 422 naming the field.
    Case("string-for-list", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "capabilities": "python"}, field="capabilities"),
    Case("number-in-list", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "capabilities": [1]}, field="capabilities.0"),
    Case("bad-enum", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "service_tier": "gold"}, field="service_tier"),
    Case("list-for-object", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "metadata": []}, field="metadata"),
    Case("number-for-name", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": 42}, field="agent_name"),
    Case("bad-url", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "manifest": {"endpoint": "not a url"}},
         field="manifest.endpoint"),
    Case("negative-price", "POST", REGISTER, 422, "invalid_argument",
         json={"agent_name": "fine", "manifest": {"pricing": {"type": "per_hour", "price": -1}}}, field="manifest.pricing.price"),
    Case("string-for-int", "POST", QUERY, 422, "invalid_argument", json={"limit": "abc"}, field="limit"),
    Case("negative-limit", "POST", QUERY, 422, "invalid_argument", json={"limit": -1}, field="limit"),
    Case("huge-int", "POST", QUERY, 422, "invalid_argument", json={"limit": 10**40}, field="limit"),
    Case("bad-bool", "POST", "/agora/admin/keys/list", 422, "invalid_argument", json={"include_revoked": "maybe"}, field="include_revoked"),
    Case("bad-status", "POST", "/agora/agents/heartbeat", 422, "invalid_argument", json={"status": "sleeping"}, field="status"),
    Case("bad-action", "POST", "/agora/admin/override", 422, "invalid_argument",
         json={"target_id": "x", "action": "explode", "reason": "r"}, field="action"),
    Case("missing-field", "POST", "/agora/agents/get", 422, "invalid_argument", json={}, field="agent"),
    Case("bad-key-id", "POST", "/agora/admin/keys/revoke", 422, "invalid_argument", json={"key_id": "nope"}, field="key_id"),
    Case("null-for-string", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": None}, field="agent_name"),
    # Wrong content type: 415.
    Case("text-plain", "POST", REGISTER, 415, "unsupported_media_type", content=b'{"agent_name": "fine"}',
         headers={"Content-Type": "text/plain"}, message="application/json"),
    Case("form-encoded", "POST", REGISTER, 415, "unsupported_media_type", data={"agent_name": "fine"}),
    Case("xml", "POST", QUERY, 415, "unsupported_media_type", content=b"<q/>", headers={"Content-Type": "application/xml"}),
    Case("no-content-type", "POST", QUERY, 415, "unsupported_media_type", content=b'{"limit": 1}'),
    # Malformed JSON: 400.
    Case("truncated-json", "POST", REGISTER, 400, "invalid_argument", content=b'{"agent_name": ', headers=JSON, message="malformed JSON"),
    Case("single-quotes", "POST", REGISTER, 400, "invalid_argument", content=b"{'agent_name': 'x'}", headers=JSON, message="malformed JSON"),
    Case("trailing-garbage", "POST", QUERY, 400, "invalid_argument", content=b'{"limit": 1} x', headers=JSON, message="malformed JSON"),
    Case("nan", "POST", QUERY, 400, "invalid_argument", content=b'{"limit": NaN}', headers=JSON, message="malformed JSON"),
    Case("not-utf8", "POST", QUERY, 400, "invalid_argument", content=b'{"text": "\xff\xfe"}', headers=JSON, message="malformed JSON"),
    Case("lone-surrogate", "POST", QUERY, 400, "invalid_argument", content=b'{"text": "\\ud800"}', headers=JSON),
    Case("too-deep-for-the-parser", "POST", QUERY, 400, "invalid_argument", content=b"[" * 5000 + b"]" * 5000, headers=JSON),
    # A JSON body that is not an object: 400.
    Case("array-body", "POST", REGISTER, 400, "invalid_argument", content=b'[{"agent_name": "fine"}]', headers=JSON, message="object"),
    Case("empty-array-body", "POST", QUERY, 400, "invalid_argument", content=b"[]", headers=JSON, message="object"),
    Case("string-body", "POST", QUERY, 400, "invalid_argument", content=b'"str"', headers=JSON, message="object"),
    Case("number-body", "POST", QUERY, 400, "invalid_argument", content=b"42", headers=JSON, message="object"),
    Case("null-body", "POST", QUERY, 400, "invalid_argument", content=b"null", headers=JSON, message="object"),
    # Unknown tools (after authentication): 404 naming the tool.
    Case("unknown-tool", "POST", "/agora/nope/thing", 404, "not_found", json={}, message="agora.nope.thing", details={"tool": "agora.nope.thing"}),
    Case("unknown-action", "GET", "/agora/agents/teleport", 404, "not_found", message="agora.agents.teleport",
         details={"tool": "agora.agents.teleport"}),
    Case("tool-with-a-tail", "POST", "/agora/agents/register/extra", 404, "not_found", json={},
         details={"tool": "agora.agents.register.extra"}),
    Case("category-only", "POST", "/agora/agents", 404, "not_found", json={}, details={"tool": "agora.agents"}),
    # Unknown paths: 404.
    Case("unknown-path", "GET", "/nope", 404, "not_found"),
    Case("unknown-versioned-path", "POST", "/v1/agents", 404, "not_found", json={}),
    Case("near-agora", "GET", "/agoras/agents/register", 404, "not_found"),
    Case("too-deep-resource", "GET", "/agents/x/y/z", 404, "not_found"),
    # Wrong method: 405 with Allow.
    Case("get-on-write-tool", "GET", REGISTER, 405, "method_not_allowed", allow="POST", message="POST"),
    Case("put-on-read-tool", "PUT", QUERY, 405, "method_not_allowed", json={}, allow="GET, POST"),
    Case("delete-on-override", "DELETE", "/agora/admin/override", 405, "method_not_allowed", allow="POST"),
    Case("put-on-alias", "PUT", "/agents/register", 405, "method_not_allowed", json={}),
    Case("delete-health", "DELETE", "/health", 405, "method_not_allowed"),
    Case("post-metrics", "POST", "/metrics", 405, "method_not_allowed"),
    # Bad query parameters on GET: 422 naming the parameter (400 when repeated).
    Case("get-limit-abc", "GET", QUERY, 422, "invalid_argument", params={"limit": "abc"}, field="limit"),
    Case("get-limit-zero", "GET", QUERY, 422, "invalid_argument", params={"limit": "0"}, field="limit"),
    Case("get-limit-too-big", "GET", "/agents", 422, "invalid_argument", params={"limit": "501"}, field="limit"),
    Case("get-bad-status", "GET", QUERY, 422, "invalid_argument", params={"status": "sleeping"}, field="status"),
    Case("get-bad-capability", "GET", QUERY, 422, "invalid_argument", params={"capabilities": "no spaces"}, field="capabilities.0"),
    Case("get-bad-bool", "GET", "/agora/admin/keys/list", 422, "invalid_argument", params={"include_revoked": "maybe"}, field="include_revoked"),
    Case("get-bad-literal", "GET", "/agora/admin/health", 422, "invalid_argument", params={"component": "disk"}, field="component"),
    Case("get-missing", "GET", "/agora/agents/get", 422, "invalid_argument", field="agent"),
    Case("get-repeated-scalar", "GET", QUERY, 400, "invalid_argument", params=[("limit", "1"), ("limit", "2")], field="limit"),
    # Bad cursors: 400.
    Case("cursor-not-utf8", "POST", QUERY, 400, "invalid_argument", json={"cursor": "zzzz"}, field="cursor"),
    Case("cursor-get", "GET", QUERY, 400, "invalid_argument", params={"cursor": "zzzz"}, field="cursor"),
    Case("cursor-not-base64", "POST", QUERY, 400, "invalid_argument", json={"cursor": "!!!"}, field="cursor"),
    Case("cursor-with-nul", "POST", QUERY, 400, "invalid_argument", json={"cursor": b64("agent_\x00")}, field="cursor"),
    Case("keys-cursor-not-base64", "POST", "/agora/admin/keys/list", 400, "invalid_argument", json={"cursor": "!!!"}, field="cursor"),
    Case("audit-cursor-not-a-number", "POST", "/agora/admin/audit", 400, "invalid_argument", json={"cursor": b64("hello")}, field="cursor"),
    Case("audit-cursor-overflow", "POST", "/agora/admin/audit", 400, "invalid_argument", json={"cursor": b64("9" * 30)}, field="cursor"),
    Case("cursor-too-long", "POST", QUERY, 422, "invalid_argument", json={"cursor": "A" * 600}, field="cursor"),
    # Bad version ranges: 400 naming the field.
    Case("version-range", "POST", "/agora/discovery/list", 400, "invalid_argument", json={"version": ">=abc"}, field="version"),
    Case("version-double-op", "POST", "/agora/discovery/list", 400, "invalid_argument", json={"version": "1.0,<<2"}, field="version"),
    Case("version-get", "GET", "/agora/discovery/list", 400, "invalid_argument", params={"version": "not a version"}, field="version"),
    Case("version-services", "POST", "/agora/query/services", 400, "invalid_argument", json={"version": "~="}, field="version"),
    Case("version-schema", "POST", "/agora/discovery/schema", 400, "invalid_argument",
         json={"name": "agora.query.agents", "version": ">>1"}, field="version"),
    # Reserved and malformed agent names: 422.
    *[
        Case(f"reserved-{name}", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": name}, field="agent_name", message="reserved")
        for name in ("broadcast", "BROADCAST", "system", "All", "agent_0123456789abcdef")
    ],
    Case("reserved-alias", "POST", "/agents/register", 422, "invalid_argument", json={"agent_name": "broadcast"}, field="agent_name"),
    Case("reserved-v4", "POST", "/agora/agents/register_capability", 422, "invalid_argument",
         json={"agent_id": "broadcast", "capability_type": "x"}, field="agent_id"),
    *[
        Case(f"bad-name-{i}", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": name}, field="agent_name")
        for i, name in enumerate(("", "-leading", "has space", "a" * 129, "slash/no", "ünïcode"))
    ],
    # Values no engine can store or echo back: NUL characters and pathological nesting (422 naming the field).
    Case("nul-in-string", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "description": "a\x00b"}, field="description"),
    Case("nul-in-lookup", "POST", "/agora/agents/get", 422, "invalid_argument", json={"agent": "a\x00b"}, field="agent"),
    Case("nul-in-path", "GET", "/agents/a%00b", 422, "invalid_argument", field="agent"),
    Case("nul-in-query-param", "GET", "/agora/admin/keys/list", 422, "invalid_argument", params={"tenant": "t\x00"}, field="tenant"),
    Case("nul-in-metadata-value", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "metadata": {"k": "v\x00"}},
         field="metadata.k"),
    Case("deep-metadata", "POST", REGISTER, 422, "invalid_argument", json={"agent_name": "fine", "metadata": nested(300)}, message="deep"),
    Case("deep-list-metadata", "POST", REGISTER, 422, "invalid_argument",
         content=b'{"agent_name": "fine", "metadata": {"x": ' + b"[" * 900 + b"]" * 900 + b"}}", headers=JSON, message="deep"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(admin, case):
    case.check(case.send(admin))


def test_unknown_tools_and_paths_answer_401_before_404_without_a_key(hub):
    with httpx.Client(base_url=hub.url, timeout=30) as anonymous:
        for path in ("/agora/nope/thing", "/agora/agents/teleport"):
            response = anonymous.post(path, json={})
            expect_error(response, 401, "unauthenticated")
            assert "agora.nope" not in response.text and "teleport" not in response.text


def test_oversize_bodies_are_refused_with_413(admin):
    _check_oversize(admin)


def _check_oversize(admin: httpx.Client) -> None:
    padded = b'{"limit": 1' + b" " * (LIMIT - 13) + b"}"
    assert len(padded) == LIMIT - 1
    assert ok(admin.post(QUERY, content=padded, headers=JSON))["count"] >= 0  # just under the limit is fine
    exact = padded[:-1] + b" }"
    assert len(exact) == LIMIT and admin.post(QUERY, content=exact, headers=JSON).status_code == 200
    over = padded[:-1] + b"  }"
    error = expect_error(admin.post(QUERY, content=over, headers=JSON), 413, "payload_too_large")
    assert error["details"]["limit"] == LIMIT and str(LIMIT) in error["message"]
    big = json.dumps({"agent_name": "big", "description": "x" * (2 * LIMIT)}).encode()
    expect_error(admin.post(REGISTER, content=big, headers=JSON), 413, "payload_too_large")
    # Before the content type is even looked at.
    expect_error(admin.post(REGISTER, content=b"x" * (LIMIT + 1), headers={"Content-Type": "text/plain"}), 413, "payload_too_large")


def test_oversize_chunked_bodies_without_content_length_are_refused_with_413(admin):
    def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
        yield b'{"limit": 1'
        sent = 11
        while sent < total:
            part = min(size, total - sent)
            yield b" " * part
            sent += part
        yield b"}"

    request = admin.build_request("POST", QUERY, content=chunks(3 * LIMIT), headers=JSON)
    assert "content-length" not in request.headers and request.headers["transfer-encoding"] == "chunked"
    error = expect_error(admin.send(request), 413, "payload_too_large")
    assert error["details"]["limit"] == LIMIT
    # A small chunked body is read as usual.
    small = admin.build_request("POST", QUERY, content=chunks(1000), headers=JSON)
    assert "content-length" not in small.headers
    assert ok(admin.send(small))["count"] >= 0


def test_bad_requests_leave_the_hub_and_its_data_intact(hub, admin):
    tenant_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))["key"]
    with hub.client(tenant_key) as tenant:
        agents = [
            ok(call(tenant, "agora.agents.register", agent_name=unique(), capabilities=["keep", f"c{i}"], metadata={"i": i}))["agent"]
            for i in range(3)
        ]
        before = ok(call(tenant, "agora.query.agents"))
        stats = ok(call(tenant, "agora.query.marketplace"))

        statuses = {case.id: case.send(tenant).status_code for case in CASES}
        # Bad writes aimed at the stored agents change nothing.
        target = agents[0]
        for bad in (
            {"agent": target["agent_id"], "capabilities": "not-a-list"},
            {"agent": target["agent_id"], "metadata": {"x": "\x00"}},
            {"agent": target["agent_id"], "status": "paused"},
            {"agent": target["agent_id"], "description": "x" * 5000},
            {"agent": target["agent_id"], "capabilities": ["ok"], "bogus": True},
        ):
            assert call(tenant, "agora.agents.update", **bad).status_code == 422, bad
        for bad in (
            {"agent_name": target["agent_name"], "capabilities": ["fine"], "service_tier": "platinum"},
            {"agent_name": target["agent_name"], "metadata": nested(300)},
        ):
            assert call(tenant, "agora.agents.register", **bad).status_code == 422, bad
        expect_error(tenant.post(REGISTER, content=b'{"agent_name": "' + target["agent_name"].encode(), headers=JSON), 400, "invalid_argument")
        _check_oversize(tenant)

        assert ok(httpx.get(hub.url + "/health"))["status"] == "ok"
        assert ok(httpx.get(hub.url + "/ready"))["status"] == "ready"
        assert ok(call(tenant, "agora.query.agents")) == before
        assert ok(call(tenant, "agora.query.marketplace")) == stats
        for agent in agents:
            assert ok(call(tenant, "agora.agents.get", agent=agent["agent_id"])) == agent
        # …and the hub still takes new work.
        assert ok(call(tenant, "agora.agents.register", agent_name=unique(), capabilities=["keep"]))["status"] == "registered"
        assert ok(call(tenant, "agora.query.agents", capabilities=["keep"]))["count"] == 4
    # Each case's exact answer is test_bad_input's business; here none may have been a success or a crash.
    assert {case: status for case, status in statuses.items() if not 400 <= status < 500} == {}


# ------------------------------------------------------------------------------- the garbage sweep

JUNK_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**64,
    1.5e308,
    "",
    "x" * 5000,
    "a\x00b",
    "🙂",
    "'; DROP TABLE agents; --",
    "%_\\*",
    "agent_0000000000000000",
    "../../etc/passwd",
    [],
    [None, {}],
    {},
    {"$ne": None},
    nested(300),
]
JUNK_BODIES: list[bytes] = [
    b'{"x": 1}',
    b"[]",
    b'"str"',
    b'{"limit": -1}',
    b"null",
    b"1",
    b"{",
    b"\x00",
    b'{"\\u0000": 1}',
    json.dumps(nested(50)).encode(),
    json.dumps(nested(400)).encode(),
    b"[" * 2000 + b"]" * 2000,
    b'{"a": ' * 2000,
]
JUNK_PARAMS = ["", "x" * 3000, "a\x00b", "-1", "abc", "[]", "{", "%", "🙂", "agent_0000000000000000"]


def _sweep_requests(client: httpx.Client, tools: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    requests: list[tuple[str, str, dict[str, Any]]] = []
    for tool in tools:
        path = "/" + tool["name"].replace(".", "/")
        fields = list(ok(call(client, "agora.discovery.schema", name=tool["name"]))["input_schema"].get("properties", {}))
        for body in JUNK_BODIES:
            requests.append(("POST", path, {"content": body, "headers": JSON}))
        for name in fields + ["no_such_field"]:
            for value in JUNK_VALUES:
                requests.append(("POST", path, {"content": json.dumps({name: value}).encode(), "headers": JSON}))
            if tool["read_only"]:
                for value in JUNK_PARAMS:
                    requests.append(("GET", path, {"params": {name: value}}))
    return requests


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def swept(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub of the sweep's own: the garbage it accepts as valid (a budget of 0 for the admin's tenant, say) must not
    change the hub other tests share."""
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    hub = HubProcess(tmp_path_factory.mktemp(f"swept-{request.param}"), database_url=url).start()
    yield hub
    hub.stop()


@pytest.fixture
def swept_admin(swept: HubProcess) -> Iterator[httpx.Client]:
    with swept.client() as client:
        yield client


@pytest.mark.parametrize("who", ["admin", "tenant admin"])
def test_no_garbage_input_ever_gets_a_500(swept: HubProcess, swept_admin: httpx.Client, who: str) -> None:
    hub, admin = swept, swept_admin
    # The hub's own tools: an imported ext.* tool (an MCP server another test registered) answers with its upstream's
    # verdict, and a gateway's 502/503/504 for an upstream that fails is that verdict (tests/test_gateway.py).
    tools = [t for t in ok(call(admin, "agora.discovery.list"))["services"] if t["category"] != "ext"]
    if who == "admin":
        key = hub.admin_key
    else:
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant"), scopes=["admin", "agents:read", "agents:write"]))["key"]
    with hub.client(key) as client:
        requests = _sweep_requests(client, tools)
    assert len(requests) > 500
    # One client per sender thread: one httpx pool shared by eight threads once handed a request a socket that was
    # already closed (ReadError, EBADF), a failure of the test's client and not of the hub.
    clients: list[httpx.Client] = []
    own = threading.local()

    def send(request: tuple[str, str, dict[str, Any]]) -> str | None:
        method, path, kwargs = request
        if not hasattr(own, "client"):
            own.client = hub.client(key)
            clients.append(own.client)
        response = own.client.request(method, path, **kwargs)
        if response.status_code >= 500:
            return f"{response.status_code} for {method} {path} {kwargs}: {response.text[:200]}"[:600]
        if response.status_code >= 400:
            try:
                body = response.json()
                assert set(body["error"]) == {"code", "message", "details"}
            except Exception:  # noqa: BLE001 - any deviation from the error shape is a failure
                return f"bad error shape for {method} {path} {kwargs}: {response.text[:200]}"[:600]
        return None

    with ThreadPoolExecutor(8) as pool:
        failures = [f for f in pool.map(send, requests) if f]
    for client in clients:
        client.close()
    assert not failures, f"{len(failures)} of {len(requests)} garbage requests failed:\n" + "\n".join(failures[:25])
    # Still healthy and halted by nothing.
    assert ok(call(admin, "agora.admin.health", component="system"))["status"] == "healthy"


def test_numbers_past_a_columns_range_and_an_empty_category_are_not_500s(hub, admin):
    """Found by schemathesis on PostgreSQL: an integer past its column's range (int4) reached the database and failed
    there (every integer input now has a bound: test_catalog), and a ranked storefront search with an empty category
    built a search the hub's own model refused."""
    run = call(admin, "agora.workflow.run", workflow_name=unique("flow"), version=2**40, input={})
    assert "version" in expect_error(run, 422, "invalid_argument")["message"]
    report = call(admin, "agora.hosting.report", instance_id="inst_" + "0" * 24, processes=2**40, memory_mb=1.0)
    assert "processes" in expect_error(report, 422, "invalid_argument")["message"]
    report = call(admin, "agora.hosting.report", instance_id="inst_" + "0" * 24, pid=2**40, memory_mb=1.0)
    assert "pid" in expect_error(report, 422, "invalid_argument")["message"]
    def ids(answer: Any) -> list[str]:
        return [listing["listing_id"] for listing in ok(answer)["agents"]]

    anywhere = ids(call(admin, "agora.marketplace.discover", q="translate"))  # an empty category is none
    assert ids(admin.get("/agora/marketplace/discover", params={"q": "translate", "category": ""})) == anywhere
    assert ids(call(admin, "agora.marketplace.discover", q="translate", category="")) == anywhere


def test_an_agents_a2a_message_that_is_not_an_a2a_message_is_refused_and_changes_nothing(hub, admin):
    """An agent's message is checked before its update's transaction: text-only ones by shape, any other by the A2A
    schema. A message neither accepts is refused whole; the turn and the task are as they were, and a good update
    then ends them."""
    from .test_catalog import _a2a_turn

    turn = _a2a_turn(admin)
    for bad in (
        {"parts": [{"text": 5}]},  # text-only in shape, but not text
        {"parts": [{"texte": "misspelt"}]},  # a part field A2A does not have
        {"parts": [{"text": "hi"}], "role": "ROLE_USER", "extensions": "not a list"},
        {"parts": "not a list"},
    ):
        update = call(admin, "agora.a2a.update", **turn, state="completed", message=bad)
        assert "not an A2A Message" in expect_error(update, 400, "invalid_argument")["message"], bad
    task = ok(call(admin, "agora.task.get", task_id=turn["task_id"]))
    assert task["status"] == "in_progress"
    done = ok(call(admin, "agora.a2a.update", **turn, state="completed", message={"parts": [{"text": "done"}]}))
    assert (done["state"], done["final"]) == ("completed", True)
