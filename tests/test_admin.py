"""Administrative overrides (pause, resume, terminate, emergency halt) and the audit log, on both engines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import httpx
import pytest

from .conftest import _pg, call, expect_error, fresh_postgres_url, ok, unique
from .hubproc import HubProcess


def override(admin: httpx.Client, target: str, action: str, reason: str, **extra: Any) -> dict[str, Any]:
    result = ok(call(admin, "agora.admin.override", target_id=target, action=action, reason=reason, **extra))
    assert result["override_id"].startswith("ovr_") and result["status"] == "executed"
    assert result["target_id"] == target and result["action"] == action and result["executed_at"].endswith("Z")
    return result


def tenant_with_agent(admin: httpx.Client, hub: HubProcess) -> tuple[httpx.Client, dict[str, Any]]:
    key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))["key"]
    tenant = hub.client(key)
    return tenant, ok(call(tenant, "agora.agents.register", agent_name=unique(), capabilities=["work"]))


def status_of(client: httpx.Client, agent_id: str) -> str:
    return ok(call(client, "agora.agents.get", agent=agent_id))["status"]


# ------------------------------------------------------------------------------ agent overrides


def test_pause_blocks_the_agents_writes_but_not_its_reads_until_resumed(hub, admin):
    tenant, reg = tenant_with_agent(admin, hub)
    agent_id = reg["agent_id"]
    with closing(tenant), hub.client(reg["agent_token"]) as me:
        assert ok(call(me, "agora.agents.heartbeat", status="busy"))["status"] == "busy"
        paused = override(admin, agent_id, "pause", "suspicious traffic")
        assert paused["system_halted"] is False

        for refused in (
            call(me, "agora.agents.heartbeat"),
            call(me, "agora.agents.heartbeat", status="active"),
            call(me, "agora.agents.update", description="still here"),
            call(me, "agora.agents.register", agent_name=reg["agent_name"], capabilities=["work"]),
            me.post(f"/agents/{agent_id}/heartbeat", json={}),
            call(me, "agora.agents.deregister", agent=agent_id),
        ):
            error = expect_error(refused, 409, "failed_precondition")
            assert error["details"] == {"reason": "agent_paused", "agent_id": agent_id}
            assert "paused" in error["message"]
        # Reads still work, and everyone sees the status.
        assert ok(call(me, "agora.agents.get", agent=agent_id))["status"] == "paused"
        assert ok(me.get(f"/agents/{agent_id}/status"))["status"] == "paused"
        assert [a["agent_id"] for a in ok(call(me, "agora.query.agents", status="paused"))["agents"]] == [agent_id]
        assert ok(call(me, "agora.query.marketplace"))["by_status"] == {"paused": 1}
        assert status_of(tenant, agent_id) == status_of(admin, agent_id) == "paused"
        # The owner cannot lift it by reporting a status either; nothing moved.
        expect_error(call(tenant, "agora.agents.update", agent=agent_id, status="active"), 403, "permission_denied")
        assert ok(call(tenant, "agora.agents.heartbeat", agent=agent_id, status="active"))["status"] == "paused"
        assert status_of(admin, agent_id) == "paused"
        # Other agents of the tenant are not affected.
        other = ok(call(tenant, "agora.agents.register", agent_name=unique()))
        with hub.client(other["agent_token"]) as them:
            assert ok(call(them, "agora.agents.heartbeat"))["status"] == "active"

        resumed = override(admin, agent_id, "resume", "cleared")
        assert resumed["system_halted"] is False
        assert status_of(me, agent_id) == "active"
        assert ok(call(me, "agora.agents.heartbeat", status="busy"))["status"] == "busy"
        assert ok(call(me, "agora.agents.update", description="back"))["description"] == "back"


def test_emergency_halt_of_one_agent_pauses_it(hub, admin):
    tenant, reg = tenant_with_agent(admin, hub)
    with closing(tenant), hub.client(reg["agent_token"]) as me:
        result = override(admin, reg["agent_name"], "emergency_halt", "runaway loop")  # by name
        assert result["system_halted"] is False
        assert status_of(admin, reg["agent_id"]) == "paused"
        expect_error(call(me, "agora.agents.heartbeat"), 409, "failed_precondition")
        assert ok(call(tenant, "agora.agents.register", agent_name=unique()))["status"] == "registered"  # the hub is not halted


def test_terminate_marks_the_agent_and_revokes_its_tokens(hub, admin):
    tenant, reg = tenant_with_agent(admin, hub)
    agent_id = reg["agent_id"]
    extra = ok(call(admin, "agora.admin.keys.create", kind="agent", agent=agent_id, name="second token"))
    with closing(tenant), hub.client(reg["agent_token"]) as me, hub.client(extra["key"]) as also_me:
        assert ok(call(me, "agora.agents.heartbeat"))["agent_id"] == agent_id
        assert ok(call(also_me, "agora.agents.heartbeat"))["agent_id"] == agent_id
        override(admin, agent_id, "terminate", "compromised credentials")
        for client in (me, also_me):
            for response in (call(client, "agora.agents.heartbeat"), call(client, "agora.agents.get", agent=agent_id), client.get("/agents")):
                expect_error(response, 401, "unauthenticated")
        assert status_of(admin, agent_id) == status_of(tenant, agent_id) == "terminated"
        expect_error(call(tenant, "agora.agents.update", agent=agent_id, status="active"), 403, "permission_denied")
        assert status_of(tenant, agent_id) == "terminated"
        keys = ok(call(admin, "agora.admin.keys.list", tenant=reg["agent"]["tenant_id"], include_revoked=True))["keys"]
        tokens = [k for k in keys if k["agent_id"] == agent_id]
        assert len(tokens) == 2 and all(k["revoked_at"] for k in tokens)


def test_override_refuses_what_it_cannot_do(hub, admin):
    error = expect_error(call(admin, "agora.admin.override", target_id="system_wide", action="terminate", reason="no"), 400, "invalid_argument")
    assert error["details"]["field"] == "target_id" and "terminate" in error["message"]
    missing = "agent_" + "f" * 16
    expect_error(call(admin, "agora.admin.override", target_id=missing, action="pause", reason="ghost"), 404, "not_found")
    expect_error(call(admin, "agora.admin.override", target_id=unique("nobody"), action="pause", reason="ghost"), 404, "not_found")
    for bad, name in (
        ({"target_id": missing, "action": "explode", "reason": "r"}, "action"),
        ({"target_id": missing, "action": "pause"}, "reason"),
        ({"target_id": missing, "action": "pause", "reason": ""}, "reason"),
        ({"target_id": missing, "action": "pause", "reason": "r", "authority": 256}, "authority"),
        ({"action": "pause", "reason": "r"}, "target_id"),
    ):
        error = expect_error(call(admin, "agora.admin.override", **bad), 422, "invalid_argument")
        assert name in [e["field"] for e in error["details"]["errors"]], error
    assert ok(call(admin, "agora.admin.health", component="system"))["status"] == "healthy"


# ---------------------------------------------------------------------------------------- audit


def test_every_override_is_audited_newest_first_with_cursor_pagination(hub, admin):
    tenant, reg = tenant_with_agent(admin, hub)
    tenant.close()
    agent_id = reg["agent_id"]
    done = [
        override(admin, agent_id, "pause", "first look"),
        override(admin, agent_id, "resume", "false alarm"),
        override(admin, agent_id, "pause", "second look", priority=200),
        override(admin, agent_id, "terminate", "confirmed abuse"),
    ][::-1]
    entries = ok(call(admin, "agora.admin.audit", target_id=agent_id))["entries"]
    assert [e["action"] for e in entries] == ["override.terminate", "override.pause", "override.resume", "override.pause"]
    assert [e["reason"] for e in entries] == ["confirmed abuse", "second look", "false alarm", "first look"]
    assert [e["details"]["override_id"] for e in entries] == [d["override_id"] for d in done]
    assert [e["details"]["authority_invoked"] for e in entries] == [255, 200, 255, 255]
    for entry in entries:
        assert entry["actor"] == "admin:bootstrap" and entry["actor_kind"] == "admin"
        assert entry["authority"] == 255 and entry["target_id"] == agent_id
        assert entry["tenant_id"] == reg["agent"]["tenant_id"]
        assert entry["event_id"].startswith("evt_") and entry["details"]["request_id"].startswith("req_")
    assert [e["at"] for e in entries] == sorted((e["at"] for e in entries), reverse=True)

    # Pages of one, then of three, walk the same entries in the same order.
    for size in (1, 3):
        seen, cursor = [], None
        while True:
            page = ok(call(admin, "agora.admin.audit", target_id=agent_id, limit=size, **({"cursor": cursor} if cursor else {})))
            assert page["count"] == len(page["entries"]) <= size
            seen += [e["event_id"] for e in page["entries"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == [e["event_id"] for e in entries]
    get_style = ok(admin.get("/agora/admin/audit", params={"target_id": agent_id, "action": "override.pause"}))
    assert [e["reason"] for e in get_style["entries"]] == ["second look", "first look"]
    # The unfiltered log is in the same order (newest written first; under concurrent writes that is commit
    # order, which may differ from request time by a few milliseconds, so "at" is not compared here).
    everything = ok(call(admin, "agora.admin.audit", limit=500))["entries"]
    assert [e["event_id"] for e in everything if e["target_id"] == agent_id] == [e["event_id"] for e in entries]
    assert everything[0]["event_id"] == entries[0]["event_id"]


def test_key_creation_and_revocation_are_audited(hub, admin):
    boss_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant"), name="boss", scopes=["admin", "agents:read"]))
    info = boss_key["info"]
    created = ok(call(admin, "agora.admin.audit", target_id=info["key_id"]))["entries"]
    assert [(e["action"], e["actor"], e["authority"], e["tenant_id"], e["reason"]) for e in created] == [
        ("key_created", "admin:bootstrap", 255, info["tenant_id"], "boss")
    ]
    assert created[0]["details"]["kind"] == "customer"
    # A tenant admin's key changes are audited under its own name and authority.
    with hub.client(boss_key["key"]) as boss:
        child = ok(call(boss, "agora.admin.keys.create", name="child"))["info"]
        ok(call(boss, "agora.admin.keys.revoke", key_id=child["key_id"]))
    entries = ok(call(admin, "agora.admin.audit", target_id=child["key_id"]))["entries"]
    assert [e["action"] for e in entries] == ["key_revoked", "key_created"]
    assert {(e["actor"], e["actor_kind"], e["authority"], e["tenant_id"]) for e in entries} == {
        (f"customer:{info['key_id']}", "customer", 100, info["tenant_id"])
    }
    ok(call(admin, "agora.admin.keys.revoke", key_id=info["key_id"]))
    entries = ok(call(admin, "agora.admin.audit", target_id=info["key_id"]))["entries"]
    assert [(e["action"], e["actor"]) for e in entries] == [("key_revoked", "admin:bootstrap"), ("key_created", "admin:bootstrap")]
    revoked = ok(call(admin, "agora.admin.audit", action="key_revoked", limit=500))["entries"]
    assert {child["key_id"], info["key_id"]} <= {e["target_id"] for e in revoked}


# ------------------------------------------------------------------------- system-wide halt
# A halt stops the whole hub, so these tests run on a hub of their own, never the session's.


@pytest.fixture(params=["sqlite", "postgres"])
def own_hub(request: pytest.FixtureRequest, tmp_path) -> Iterator[HubProcess]:
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    hub = HubProcess(tmp_path / "hub", database_url=url).start()
    try:
        yield hub
    finally:
        hub.stop()
        if url:
            _pg(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _assert_halted(response: httpx.Response, halt: dict[str, Any], reason: str) -> None:
    error = expect_error(response, 503, "unavailable")
    assert error["details"]["reason"] == "system_halted", error
    assert error["details"]["override_id"] == halt["override_id"] and error["details"]["halt_reason"] == reason, error


def test_emergency_halt_refuses_every_write_until_resumed_and_survives_a_restart(own_hub):
    hub = own_hub
    with hub.client() as admin:
        tools = ok(call(admin, "agora.discovery.list"))["services"]
        writes = [t["name"] for t in tools if t["refused_when_halted"]]
        assert {"agora.agents.register", "agora.agents.heartbeat", "agora.agents.update", "agora.agents.deregister"} <= set(writes)
        assert {"agora.messaging.send", "agora.messaging.send_batch", "agora.messaging.publish"} <= set(writes)
        draining = {t["name"] for t in tools if not t["read_only"] and t["category"] != "admin" and not t["refused_when_halted"]}
        # In-flight work drains: messages are still taken and acked, claimed tasks still report and finish.
        assert draining == {
            "agora.messaging.receive", "agora.messaging.ack", "agora.messaging.unsubscribe",
            "agora.task.heartbeat", "agora.task.update", "agora.task.update_batch", "agora.task.cancel",
            "agora.task.emit",  # a claimed task's output, as it finishes
            "agora.hosting.report",  # hosting nodes still say what their instances do (a crash, a sample)
            "agora.hosting.register_node",  # admin only: operators still manage hosting capacity
            "agora.tools.call",  # a dispatcher: the tool it calls decides (checked below)
            "agora.tools.start",  # likewise: the tool it starts is checked before the task is made
            "agora.marketplace.chat",  # likewise: it answers from reads; a change it makes goes through its tool
            # People are managed during a halt (a compromised account must still go), and a person's own second factor.
            "agora.users.create", "agora.users.remove", "agora.memberships.set", "agora.memberships.remove",
            "agora.users.set_second_factor",
            "agora.reviews.hide",  # admin only: moderation goes on
            "agora.billing.report_usage",  # an instance's units of work in flight
            "agora.billing.grant_credits",  # admin only: money goes on
            "agora.billing.set_budget", "agora.billing.credit_policy",  # spending controls are never frozen
        }
        assert {"agora.task.assign", "agora.task.assign_batch", "agora.task.claim", "agora.task.claim_batch", "agora.task.requeue"} <= set(writes)
        tenant, reg = tenant_with_agent(admin, hub)
        agent_id = reg["agent_id"]
        halt = override(admin, "system_wide", "emergency_halt", "incident 42")
        assert halt["system_halted"] is True
        with closing(tenant), hub.client(reg["agent_token"]) as me:
            for client in (admin, tenant, me):
                for name in writes:
                    _assert_halted(call(client, name), halt, "incident 42")  # refused before the input is even read
                _assert_halted(call(client, "agora.agents.register", agent_name=unique(), capabilities=["x"]), halt, "incident 42")
                _assert_halted(call(client, "agora.tools.call", name="agora.agents.register", arguments={"agent_name": unique()}), halt, "incident 42")
                _assert_halted(call(client, "agora.tools.start", name="agora.agents.register", arguments={"agent_name": unique()}), halt, "incident 42")
                _assert_halted(client.post("/agents/register", json={"agent_name": unique()}), halt, "incident 42")
                _assert_halted(client.post(f"/agents/{agent_id}/heartbeat", json={}), halt, "incident 42")
                _assert_halted(client.patch(f"/agents/{agent_id}", json={"description": "x"}), halt, "incident 42")
                _assert_halted(client.delete(f"/agents/{agent_id}"), halt, "incident 42")
            # Reads still work, and nothing was written.
            for client in (admin, tenant, me):
                assert ok(call(client, "agora.agents.get", agent=agent_id))["status"] == "active"
                assert ok(call(client, "agora.query.agents"))["count"] >= 1
                assert ok(client.get("/agents"))["count"] >= 1
                assert ok(call(client, "agora.discovery.list"))["count"] == len(tools)
            assert ok(call(tenant, "agora.query.marketplace"))["total_agents"] == 1
            assert ok(call(admin, "agora.agents.get", agent=agent_id))["last_heartbeat"] is None
            # The administrator can still operate the hub.
            extra = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))["info"]
            assert ok(call(admin, "agora.admin.keys.list", tenant=extra["tenant_id"]))["count"] == 1
            health = ok(call(admin, "agora.admin.health"))
            assert health["status"] == "critical"
            assert health["components"]["system"]["status"] == "critical" and "incident 42" in health["components"]["system"]["detail"]
            assert health["components"]["database"]["status"] == "healthy"
            assert ok(httpx.get(hub.url + "/health"))["status"] == "ok"

    # The halt is stored: a restarted hub is still halted.
    hub.stop()
    hub.start()
    with hub.client() as admin:
        _assert_halted(call(admin, "agora.agents.register", agent_name=unique()), halt, "incident 42")
        assert ok(call(admin, "agora.admin.health", component="system"))["status"] == "critical"

        resumed = override(admin, "system_wide", "resume", "incident closed")
        assert resumed["system_halted"] is False
        assert ok(call(admin, "agora.agents.register", agent_name=unique()))["status"] == "registered"
        with hub.client(reg["agent_token"]) as me:
            assert ok(call(me, "agora.agents.heartbeat", status="busy"))["status"] == "busy"
        assert ok(call(admin, "agora.admin.health"))["components"]["system"]["status"] == "healthy"

        entries = ok(call(admin, "agora.admin.audit", target_id="system_wide"))["entries"]
        assert [(e["action"], e["reason"], e["tenant_id"], e["authority"], e["actor"]) for e in entries] == [
            ("override.resume", "incident closed", None, 255, "admin:bootstrap"),
            ("override.emergency_halt", "incident 42", None, 255, "admin:bootstrap"),
        ]
        assert [e["details"]["override_id"] for e in entries] == [resumed["override_id"], halt["override_id"]]
