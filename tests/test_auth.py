"""The auth matrix on both engines: keys, tenants, agent tokens, scopes and the admin-only tools."""

from __future__ import annotations

import uuid
from typing import Any, Callable

import httpx
import pytest

from agora.core.auth import hash_key

from .conftest import call, expect_error, ok, unique
from .hubproc import HubProcess


def expect_401(response: httpx.Response) -> dict[str, Any]:
    error = expect_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].lower().startswith("bearer"), response.headers
    return error


def customer(admin: httpx.Client, hub: HubProcess, scopes: list[str] | None = None, tenant: str | None = None) -> tuple[httpx.Client, dict[str, Any]]:
    """A customer key (new tenant unless ``tenant`` is given) as a client, with its key info."""
    args: dict[str, Any] = {"kind": "customer", "tenant": tenant or unique("tenant"), "name": unique("key")}
    if scopes is not None:
        args["scopes"] = scopes
    created = ok(call(admin, "agora.admin.keys.create", **args))
    return hub.client(created["key"]), {**created["info"], "tenant_name": args["tenant"], "secret": created["key"]}


def missing_agent_id() -> str:
    return "agent_" + uuid.uuid4().hex[:16]


# ---------------------------------------------------------------------------------------------- keys


def _guarded_requests(tools: list[dict[str, Any]]) -> list[tuple[str, str]]:
    requests = [
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/agents"),
        ("GET", "/agents/agent_0000000000000000"),
        ("GET", "/agents/someone/status"),
        ("POST", "/agents/register"),
        ("PATCH", "/agents/someone"),
        ("DELETE", "/agents/someone"),
        ("POST", "/agents/someone/heartbeat"),
        ("GET", "/discovery/list"),
        ("GET", "/discovery/schema/agora.query.agents"),
        ("POST", "/agora/no/such_tool"),
        ("GET", "/agora/no/such_tool"),
        ("GET", "/agora/agents/register"),  # wrong method: still 401 before anything is said about the tool
    ]
    for tool in tools:
        path = "/" + tool["name"].replace(".", "/")
        requests.append(("POST", path))
        if tool["read_only"]:
            requests.append(("GET", path))
    return requests


BAD_AUTHORIZATION = [
    None,  # no header at all
    "",
    "Bearer",
    "Bearer \tx",
    "Basic YWRtaW46YWRtaW4=",
    "Token agora_sk_abcdef",
    "agora_sk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",  # a key without the scheme
    "Bearer not-a-key",
    "Bearer agora_sk_" + "A" * 43,  # well-formed, unknown
    "Bearer agora_sk_abc def",
]


def test_every_guarded_endpoint_refuses_missing_malformed_and_unknown_keys(hub):
    with hub.client() as admin:
        tools = ok(call(admin, "agora.discovery.list"))["services"]
    assert len(tools) >= 10
    with httpx.Client(base_url=hub.url, timeout=30) as anonymous:
        for n, (method, path) in enumerate(_guarded_requests(tools)):
            # Each endpoint's attempts come from an address of their own (the hub believes X-Forwarded-For from
            # loopback): this many failures from one source would trip the brake on guessing, tested on its own.
            source = {"X-Forwarded-For": f"198.18.{n // 250}.{n % 250 + 1}"}
            for authorization in BAD_AUTHORIZATION:
                headers = source if authorization is None else {**source, "Authorization": authorization}
                response = anonymous.request(method, path, headers=headers, json={} if method in ("POST", "PATCH") else None)
                try:
                    expect_401(response)
                except AssertionError as exc:
                    raise AssertionError(f"{method} {path} with Authorization={authorization!r}: {exc}") from None


def test_health_and_ready_need_no_key(hub):
    with httpx.Client(base_url=hub.url, timeout=30) as anonymous:
        for headers in ({}, {"Authorization": "Bearer agora_sk_nonsense"}):
            assert ok(anonymous.get("/health", headers=headers))["status"] == "ok"
            assert ok(anonymous.get("/ready", headers=headers))["status"] == "ready"


def test_guarded_documents_answer_with_a_key(hub, admin):
    assert "paths" in ok(admin.get("/openapi.json"))
    docs = admin.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert "agora_tool_calls_total" in admin.get("/metrics").text
    assert admin.get("/metrics").status_code == 200


def test_scheme_is_case_insensitive_and_the_key_exact(hub, admin):
    with httpx.Client(base_url=hub.url, timeout=30) as raw:
        assert raw.get("/agora/discovery/list", headers={"Authorization": f"bearer {hub.admin_key}"}).status_code == 200
        expect_401(raw.get("/agora/discovery/list", headers={"Authorization": f"Bearer {hub.admin_key}x"}))
        expect_401(raw.get("/agora/discovery/list", headers={"Authorization": f"Bearer {hub.admin_key[:-1]}"}))


def test_revoking_a_key_takes_effect_immediately(hub, admin):
    client, info = customer(admin, hub)
    with client:
        assert ok(call(client, "agora.query.agents"))["count"] == 0  # used once: the principal is cached now
        revoked = ok(call(admin, "agora.admin.keys.revoke", key_id=info["key_id"]))
        assert revoked["key_id"] == info["key_id"] and revoked["revoked_at"]
        error = expect_401(call(client, "agora.query.agents"))
        assert "revoked" in error["message"]
        expect_401(client.get("/agents"))
    # An agent key made by keys.create is revoked just as fast.
    reg = ok(call(admin, "agora.agents.register", agent_name=unique()))
    agent_key = ok(call(admin, "agora.admin.keys.create", kind="agent", agent=reg["agent_id"]))
    with hub.client(agent_key["key"]) as me:
        assert ok(call(me, "agora.agents.heartbeat"))["agent_id"] == reg["agent_id"]
        ok(call(admin, "agora.admin.keys.revoke", key_id=agent_key["info"]["key_id"]))
        expect_401(call(me, "agora.agents.heartbeat"))
    # …while the agent's registration token is untouched.
    with hub.client(reg["agent_token"]) as me:
        assert ok(call(me, "agora.agents.heartbeat"))["agent_id"] == reg["agent_id"]


def test_created_keys_are_listed_with_their_prefix_and_never_their_secret(hub, admin):
    client, info = customer(admin, hub, scopes=["agents:read", "agents:write"])
    with client:
        agent = ok(call(client, "agora.agents.register", agent_name=unique()))
    assert info["prefix"] == info["secret"][: len(info["prefix"])] and len(info["prefix"]) < len(info["secret"])
    listing = call(admin, "agora.admin.keys.list", tenant=info["tenant_name"])
    keys = ok(listing)["keys"]
    by_id = {k["key_id"]: k for k in keys}
    assert set(by_id) >= {info["key_id"]} and len(keys) == 2
    mine = by_id[info["key_id"]]
    assert mine["prefix"] == info["prefix"] and mine["kind"] == "customer" and mine["tenant_id"] == info["tenant_id"]
    assert mine["scopes"] == ["agents:read", "agents:write"]
    (token_entry,) = [k for k in keys if k["kind"] == "agent"]
    assert token_entry["agent_id"] == agent["agent_id"] and agent["agent_token"].startswith(token_entry["prefix"])
    for secret in (info["secret"], agent["agent_token"]):
        assert secret not in listing.text and hash_key(secret) not in listing.text
    for entry in keys:
        assert "key" not in entry and "key_hash" not in entry and "secret" not in entry
        assert all(not (isinstance(v, str) and v.startswith("agora_sk_") and len(v) > len(entry["prefix"])) for v in entry.values())
    # Revoked keys leave the default listing and come back with include_revoked.
    ok(call(admin, "agora.admin.keys.revoke", key_id=info["key_id"]))
    live = ok(call(admin, "agora.admin.keys.list", tenant=info["tenant_id"]))["keys"]
    assert info["key_id"] not in {k["key_id"] for k in live}
    every = ok(call(admin, "agora.admin.keys.list", tenant=info["tenant_id"], include_revoked=True))["keys"]
    assert {k["key_id"]: k["revoked_at"] is not None for k in every}[info["key_id"]] is True


# ------------------------------------------------------------------------------------------- tenancy


def _agent_ops(client: httpx.Client) -> dict[str, Callable[[str], httpx.Response]]:
    """Every way to reach one agent by reference: the tools and their resource-style aliases."""
    return {
        "get": lambda ref: call(client, "agora.agents.get", agent=ref),
        "GET /agora/agents/get": lambda ref: client.get("/agora/agents/get", params={"agent": ref}),
        "GET /agents/{ref}": lambda ref: client.get(f"/agents/{ref}"),
        "GET /agents/{ref}/status": lambda ref: client.get(f"/agents/{ref}/status"),
        "update": lambda ref: call(client, "agora.agents.update", agent=ref, description="taken over"),
        "PATCH /agents/{ref}": lambda ref: client.patch(f"/agents/{ref}", json={"capabilities": ["stolen"]}),
        "heartbeat": lambda ref: call(client, "agora.agents.heartbeat", agent=ref, status="busy"),
        "POST /agents/{ref}/heartbeat": lambda ref: client.post(f"/agents/{ref}/heartbeat", json={"status": "error"}),
        "deregister": lambda ref: call(client, "agora.agents.deregister", agent=ref),
        "DELETE /agents/{ref}": lambda ref: client.delete(f"/agents/{ref}"),
    }


def test_a_tenant_cannot_reach_another_tenants_agents_by_id_or_name(hub, admin):
    a, a_info = customer(admin, hub)
    b, b_info = customer(admin, hub)
    secret_description = unique("confidential")
    with a, b:
        mine = ok(call(a, "agora.agents.register", agent_name=unique("a"), capabilities=[unique("cap")], description=secret_description))
        b_agent = ok(call(b, "agora.agents.register", agent_name=unique("b")))
        with hub.client(b_agent["agent_token"]) as b_token:
            for who, client in (("tenant B", b), ("B's agent token", b_token)):
                for ref, missing in ((mine["agent_id"], missing_agent_id()), (mine["agent_name"], unique("a"))):
                    for op_name, op in _agent_ops(client).items():
                        foreign, absent = op(ref), op(missing)
                        where = f"{who}, {op_name}, {ref}"
                        expect_error(foreign, 404, "not_found")
                        expect_error(absent, 404, "not_found")
                        # Not a 403 and not a different 404: exactly what a name that never existed gets.
                        assert foreign.text.replace(ref, "REF") == absent.text.replace(missing, "REF"), where
                        for leak in (a_info["tenant_id"], secret_description, mine["agent_id"] if ref != mine["agent_id"] else "\0"):
                            assert leak not in foreign.text, where
    after = ok(call(admin, "agora.agents.get", agent=mine["agent_id"]))
    assert after == mine["agent"], "the other tenant changed the agent"


def test_a_tenant_never_lists_or_counts_another_tenants_agents(hub, admin):
    a, _ = customer(admin, hub)
    b, _ = customer(admin, hub)
    a_cap, shared_cap = unique("acap"), unique("shared")
    with a, b:
        a_ids = {
            ok(call(a, "agora.agents.register", agent_name=unique("a"), capabilities=[a_cap, shared_cap], service_tier="enterprise"))["agent_id"]
            for _ in range(3)
        }
        a_name = ok(call(a, "agora.agents.get", agent=next(iter(a_ids))))["agent_name"]
        b_ids = {ok(call(b, "agora.agents.register", agent_name=unique("b"), capabilities=[shared_cap]))["agent_id"] for _ in range(2)}
        # The same name in B is B's own agent, never A's.
        twin = ok(call(b, "agora.agents.register", agent_name=a_name, capabilities=[shared_cap]))
        assert twin["status"] == "registered" and twin["agent_id"] not in a_ids
        b_ids.add(twin["agent_id"])

        def ids(result: dict[str, Any]) -> set[str]:
            return {x["agent_id"] for x in result["agents"]}

        assert ids(ok(call(b, "agora.query.agents"))) == b_ids
        assert ids(ok(call(b, "agora.query.agents", capabilities=[shared_cap]))) == b_ids
        assert ok(call(b, "agora.query.agents", capabilities=[a_cap]))["count"] == 0
        assert ok(call(b, "agora.query.agents", any_capabilities=[a_cap, "nothing"]))["count"] == 0
        assert ok(call(b, "agora.query.agents", service_tier="enterprise"))["count"] == 0
        assert ids(ok(call(b, "agora.query.agents", text=a_name))) == {twin["agent_id"]}
        assert ok(call(b, "agora.query.agents", text=a_cap))["count"] == 0
        assert ids(ok(call(b, "agora.agents.list"))) == b_ids
        assert ids(ok(b.get("/agents"))) == b_ids
        assert ids(ok(b.get("/agora/query/agents", params={"capabilities": shared_cap}))) == b_ids
        pages, cursor = set(), None
        while True:
            page = ok(call(b, "agora.query.agents", limit=1, **({"cursor": cursor} if cursor else {})))
            pages |= ids(page)
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert pages == b_ids

        stats = ok(call(b, "agora.query.marketplace"))
        assert stats["total_agents"] == 3 and sum(stats["by_status"].values()) == 3
        assert stats["by_capability"] == {shared_cap: 3} and stats["by_tier"] == {"basic": 3}
        health = ok(call(b, "agora.admin.health", component="agents"))
        assert sum(health["components"]["agents"]["data"]["by_status"].values()) == 3

        # A sees only its own, too; the admin sees both.
        assert ids(ok(call(a, "agora.query.agents", capabilities=[shared_cap]))) == a_ids
        assert ok(call(a, "agora.query.marketplace"))["by_capability"] == {a_cap: 3, shared_cap: 3}
    assert ids(ok(call(admin, "agora.query.agents", capabilities=[shared_cap], limit=500))) == a_ids | b_ids


# -------------------------------------------------------------------------------------- agent tokens


def test_an_agent_token_reads_but_never_changes_another_agent_of_its_tenant(hub, admin):
    tenant, _ = customer(admin, hub)
    with tenant:
        me = ok(call(tenant, "agora.agents.register", agent_name=unique("me"), capabilities=["x"]))
        sibling = ok(call(tenant, "agora.agents.register", agent_name=unique("sib"), capabilities=["y"], description="as is"))
    with hub.client(me["agent_token"]) as token:
        for ref in (sibling["agent_id"], sibling["agent_name"]):
            for op_name, op in _agent_ops(token).items():
                response = op(ref)
                if op_name.startswith("get") or op_name.startswith("GET"):
                    assert ok(response)["agent_id"] == sibling["agent_id"], op_name
                else:
                    error = expect_error(response, 403, "permission_denied")
                    assert "itself" in error["message"], (op_name, error)
        assert {a["agent_id"] for a in ok(call(token, "agora.query.agents"))["agents"]} == {me["agent_id"], sibling["agent_id"]}
        # Acting on itself works, with or without naming itself.
        assert ok(call(token, "agora.agents.heartbeat", status="busy"))["status"] == "busy"
        assert ok(call(token, "agora.agents.update", agent=me["agent_name"], description="mine"))["description"] == "mine"
        # Keys and overrides are not an agent's business.
        expect_error(call(token, "agora.admin.keys.create", kind="customer"), 403, "permission_denied")
        expect_error(call(token, "agora.admin.keys.list"), 403, "permission_denied")
        expect_error(call(token, "agora.admin.keys.revoke", key_id="key_0000000000000000"), 403, "permission_denied")
    assert ok(call(admin, "agora.agents.get", agent=sibling["agent_id"])) == sibling["agent"]


def test_an_agent_token_can_re_register_only_itself(hub, admin):
    tenant, _ = customer(admin, hub)
    with tenant:
        me = ok(call(tenant, "agora.agents.register", agent_name=unique("me"), capabilities=["x"]))
        sibling = ok(call(tenant, "agora.agents.register", agent_name=unique("sib"), capabilities=["y"]))
        with hub.client(me["agent_token"]) as token:
            again = ok(call(token, "agora.agents.register", agent_name=me["agent_name"], capabilities=["x", "z"]))
            assert again["agent_id"] == me["agent_id"] and again["status"] == "updated" and again["agent_token"] is None
            expect_error(call(token, "agora.agents.register", agent_name=sibling["agent_name"], capabilities=["evil"]), 403, "permission_denied")
            new_name = unique("new")
            expect_error(call(token, "agora.agents.register", agent_name=new_name), 403, "permission_denied")
            expect_error(token.post("/agents/register", json={"agent_name": new_name}), 403, "permission_denied")
        assert ok(call(tenant, "agora.agents.get", agent=sibling["agent_id"])) == sibling["agent"]
        expect_error(call(tenant, "agora.agents.get", agent=new_name), 404, "not_found")
        assert ok(call(tenant, "agora.query.agents"))["count"] == 2


# -------------------------------------------------------------------------------------------- scopes


def test_a_read_only_key_reads_and_cannot_write(hub, admin):
    writer, info = customer(admin, hub)
    with writer:
        agent = ok(call(writer, "agora.agents.register", agent_name=unique(), capabilities=["x"]))
    reader, _ = customer(admin, hub, scopes=["agents:read"], tenant=info["tenant_id"])
    with reader:
        error = expect_error(call(reader, "agora.agents.register", agent_name=unique()), 403, "permission_denied")
        assert error["details"]["missing_scopes"] == ["agents:write"] and "agents:write" in error["message"]
        for denied in (
            call(reader, "agora.agents.heartbeat", agent=agent["agent_id"]),
            call(reader, "agora.agents.update", agent=agent["agent_id"], description="no"),
            call(reader, "agora.agents.deregister", agent=agent["agent_id"]),
            reader.post("/agents/register", json={"agent_name": unique()}),
            reader.delete(f"/agents/{agent['agent_id']}"),
        ):
            expect_error(denied, 403, "permission_denied")
        assert ok(call(reader, "agora.query.agents"))["count"] == 1
        assert ok(reader.get("/agora/query/agents", params={"capabilities": "x"}))["count"] == 1
        assert ok(call(reader, "agora.agents.get", agent=agent["agent_id"]))["agent_id"] == agent["agent_id"]
        assert ok(call(reader, "agora.query.marketplace"))["total_agents"] == 1
    assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"])) == agent["agent"]


def test_a_key_without_any_scope_reaches_only_scope_free_tools(hub, admin):
    nothing, _ = customer(admin, hub, scopes=[])
    with nothing:
        expect_error(call(nothing, "agora.query.agents"), 403, "permission_denied")
        expect_error(nothing.get("/agents"), 403, "permission_denied")
        assert ok(call(nothing, "agora.discovery.list"))["count"] > 0
        assert ok(call(nothing, "agora.admin.health"))["status"] in ("healthy", "degraded", "critical")


def test_a_customer_without_the_admin_scope_cannot_manage_keys(hub, admin):
    plain, info = customer(admin, hub)
    assert "admin" not in info["scopes"]
    with plain:
        error = expect_error(call(plain, "agora.admin.keys.create", kind="customer"), 403, "permission_denied")
        assert error["details"]["missing_scopes"] == ["admin"]
        expect_error(call(plain, "agora.admin.keys.list"), 403, "permission_denied")
        expect_error(call(plain, "agora.admin.keys.revoke", key_id=info["key_id"]), 403, "permission_denied")
        expect_error(plain.get("/metrics"), 403, "permission_denied")
        assert ok(call(plain, "agora.query.agents"))["count"] == 0  # the key itself still works


def test_a_tenant_admin_manages_keys_of_its_own_tenant_only(hub, admin):
    boss, boss_info = customer(admin, hub, scopes=["admin", "agents:read"])
    other, other_info = customer(admin, hub)
    own_scopes = {"admin", "agents:read"}
    with boss, other:
        other_agent = ok(call(other, "agora.agents.register", agent_name=unique()))

        # A key in its own tenant, whether or not it names it; never more than the creator's scopes.
        for args in ({}, {"tenant": boss_info["tenant_name"]}, {"tenant": boss_info["tenant_id"]}):
            made = ok(call(boss, "agora.admin.keys.create", kind="customer", **args))["info"]
            assert made["tenant_id"] == boss_info["tenant_id"], args
            assert set(made["scopes"]) <= own_scopes, f"a tenant admin's key got scopes it lacks: {made['scopes']}"
        narrowed = ok(call(boss, "agora.admin.keys.create", scopes=["agents:read"]))
        assert narrowed["info"]["scopes"] == ["agents:read"]
        with hub.client(narrowed["key"]) as narrow:
            expect_error(call(narrow, "agora.agents.register", agent_name=unique()), 403, "permission_denied")

        # Another tenant, existing or not, is not found; the new name does not become a tenant.
        new_name = unique("tenant")
        for tenant in (other_info["tenant_name"], other_info["tenant_id"], new_name):
            expect_error(call(boss, "agora.admin.keys.create", kind="customer", tenant=tenant), 404, "not_found")
        expect_error(call(admin, "agora.admin.keys.list", tenant=new_name), 404, "not_found")

        # No admin keys, no scopes it lacks, no keys for another tenant's agents.
        expect_error(call(boss, "agora.admin.keys.create", kind="admin"), 403, "permission_denied")
        expect_error(call(boss, "agora.admin.keys.create", kind="admin", scopes=["admin"]), 403, "permission_denied")
        for scopes in (["agents:write"], ["admin", "agents:read", "tasks:write"]):
            expect_error(call(boss, "agora.admin.keys.create", scopes=scopes), 403, "permission_denied")
        foreign = call(boss, "agora.admin.keys.create", kind="agent", agent=other_agent["agent_id"])
        absent = call(boss, "agora.admin.keys.create", kind="agent", agent="agent_0123456789abcdef")
        expect_error(foreign, 404, "not_found")
        assert foreign.text.replace(other_agent["agent_id"], "REF") == absent.text.replace("agent_0123456789abcdef", "REF")

        # It lists and revokes its own tenant's keys only.
        listed = ok(call(boss, "agora.admin.keys.list"))["keys"]
        assert listed and {k["tenant_id"] for k in listed} == {boss_info["tenant_id"]}
        assert other_info["key_id"] not in {k["key_id"] for k in listed}
        expect_error(call(boss, "agora.admin.keys.list", tenant=other_info["tenant_id"]), 404, "not_found")
        expect_error(call(boss, "agora.admin.keys.revoke", key_id=other_info["key_id"]), 404, "not_found")
        assert ok(call(other, "agora.query.agents"))["count"] == 1  # the other tenant's key still works
        ok(call(boss, "agora.admin.keys.revoke", key_id=narrowed["info"]["key_id"]))
        with hub.client(narrowed["key"]) as narrow:
            expect_401(call(narrow, "agora.query.agents"))

        # Hub-wide operations stay with the hub administrator.
        expect_error(call(boss, "agora.admin.override", target_id="system_wide", action="emergency_halt", reason="mine"), 403, "permission_denied")
        expect_error(call(boss, "agora.admin.audit"), 403, "permission_denied")
        expect_error(boss.get("/metrics"), 403, "permission_denied")


def test_only_the_admin_overrides_and_reads_the_audit(hub, admin):
    boss, _ = customer(admin, hub, scopes=["admin", "agents:read", "agents:write"])
    with boss:
        agent = ok(call(boss, "agora.agents.register", agent_name=unique()))
        with hub.client(agent["agent_token"]) as token:
            for client in (boss, token):
                for target in (agent["agent_id"], "system_wide"):
                    error = expect_error(
                        call(client, "agora.admin.override", target_id=target, action="pause", reason="not allowed"), 403, "permission_denied"
                    )
                    assert "255" in error["message"]
                expect_error(call(client, "agora.admin.audit"), 403, "permission_denied")
                expect_error(client.get("/agora/admin/audit"), 403, "permission_denied")
            assert ok(call(token, "agora.agents.heartbeat"))["status"] == "active"  # nothing was paused
    assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["status"] == "active"
    # An admin key made by the admin has the admin's powers.
    second_admin = ok(call(admin, "agora.admin.keys.create", kind="admin", name="ops"))
    assert second_admin["info"]["kind"] == "admin"
    with hub.client(second_admin["key"]) as ops:
        assert ok(call(ops, "agora.admin.override", target_id=agent["agent_id"], action="resume", reason="check"))["status"] == "executed"
        entries = ok(call(ops, "agora.admin.audit", target_id=agent["agent_id"]))["entries"]
        assert [e["action"] for e in entries] == ["override.resume"] and entries[0]["authority"] == 255
        assert entries[0]["actor"] == f"admin:{second_admin['info']['key_id']}"


@pytest.mark.parametrize("kind", ["customer", "agent"])
def test_tokens_of_a_deleted_or_unknown_principal_are_unauthenticated_not_forbidden(hub, admin, kind):
    if kind == "customer":
        client, info = customer(admin, hub)
        ok(call(admin, "agora.admin.keys.revoke", key_id=info["key_id"]))
    else:
        reg = ok(call(admin, "agora.agents.register", agent_name=unique()))
        ok(call(admin, "agora.agents.deregister", agent=reg["agent_id"]))
        client = hub.client(reg["agent_token"])
    with client:
        for response in (call(client, "agora.agents.heartbeat"), call(client, "agora.admin.override"), client.get("/metrics")):
            expect_401(response)


def test_an_agent_token_never_carries_more_than_the_key_that_registered_it(hub, admin):
    writer, info = customer(admin, hub, scopes=["agents:write"])
    with writer:
        reg = ok(call(writer, "agora.agents.register", agent_name=unique()))
    with hub.client(reg["agent_token"]) as token:
        expect_error(call(token, "agora.query.agents"), 403, "permission_denied")  # agents:read was not granted
        assert ok(call(token, "agora.agents.heartbeat"))["agent_id"] == reg["agent_id"]
    keys = ok(call(admin, "agora.admin.keys.list", tenant=info["tenant_id"]))["keys"]
    assert {k["agent_id"]: k["scopes"] for k in keys if k["kind"] == "agent"} == {reg["agent_id"]: ["agents:write"]}


def test_customer_keys_without_a_tenant_each_get_a_new_tenant(hub, admin):
    first = ok(call(admin, "agora.admin.keys.create", kind="customer", name="same label"))["info"]
    second = ok(call(admin, "agora.admin.keys.create", kind="customer", name="same label"))["info"]
    assert first["tenant_id"] != second["tenant_id"] and first["tenant_id"].startswith("ten_")


def test_trailing_slash_paths_are_plain_404s(hub, admin):
    for path in ("/agora", "/agora/", "/agents/"):
        response = admin.get(path, follow_redirects=False)
        assert response.status_code == 404, (path, response.status_code)
