"""Agents on both engines: registration idempotency, updates, presence, search and pagination."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .conftest import call, new_tenant, ok, unique


def test_register_returns_id_token_and_services(admin):
    name = unique()
    reg = ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["docs", "review"], service_tier="premium"))
    assert reg["agent_id"].startswith("agent_") and len(reg["agent_id"]) == len("agent_") + 24
    assert reg["status"] == "registered"
    assert reg["agent_token"].startswith("agora_sk_")
    assert reg["agent"]["capabilities"] == ["docs", "review"]
    assert reg["agent"]["service_tier"] == "premium"
    assert {"agora.agents.register", "agora.query.agents"} <= {s["name"] for s in reg["available_services"]}


def test_register_same_name_updates_same_agent(admin):
    name = unique()
    first = ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["a"]))
    second = ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["b", "c"], description="v2"))
    assert second["agent_id"] == first["agent_id"]
    assert second["status"] == "updated"
    assert second["agent"]["capabilities"] == ["b", "c"]
    found = ok(call(admin, "agora.query.agents", text=name))
    assert [a["agent_id"] for a in found["agents"]] == [first["agent_id"]]
    assert ok(call(admin, "agora.query.agents", capabilities=["a"], text=name))["count"] == 0


def test_text_search_takes_like_wildcards_literally(admin):
    tag = unique("like")
    literal = ok(call(admin, "agora.agents.register", agent_name=f"{tag}-a", description=f"{tag} 100%_off/now"))
    ok(call(admin, "agora.agents.register", agent_name=f"{tag}-b", description=f"{tag} 100xxoff/now"))
    for text in ("100%_off", "%_off/", f"{tag} _off"):  # "_" is no wildcard
        found = ok(call(admin, "agora.query.agents", text=text))["agents"]
        assert [a["agent_id"] for a in found] == [literal["agent_id"]], text


def test_concurrent_registrations_of_one_name_make_one_agent(hub, admin):
    name = unique()

    def register(i: int) -> str:
        with hub.client() as c:
            return ok(call(c, "agora.agents.register", agent_name=name, capabilities=[f"cap{i}"]))["agent_id"]

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(register, range(16)))
    assert len(ids) == 1
    assert ok(call(admin, "agora.query.agents", text=name))["count"] == 1


def test_agent_token_acts_as_the_agent(hub, admin):
    reg = ok(call(admin, "agora.agents.register", agent_name=unique(), capabilities=["x"]))
    with hub.client(reg["agent_token"]) as me:
        beat = ok(call(me, "agora.agents.heartbeat", status="busy"))
        assert beat["agent_id"] == reg["agent_id"] and beat["status"] == "busy"
        again = ok(call(me, "agora.agents.register", agent_name=reg["agent_name"], capabilities=["x", "y"]))
        assert again["agent_id"] == reg["agent_id"] and again["agent_token"] is None
        other = unique()
        assert call(me, "agora.agents.register", agent_name=other).status_code == 403


def test_get_by_id_and_name_and_resource_routes(admin):
    reg = ok(call(admin, "agora.agents.register", agent_name=unique(), capabilities=["x"]))
    by_id = ok(admin.get(f"/agents/{reg['agent_id']}"))
    by_name = ok(admin.get(f"/agents/{reg['agent_name']}"))
    assert by_id == by_name
    assert ok(admin.get("/agora/agents/get", params={"agent": reg["agent_id"]}))["agent_id"] == reg["agent_id"]
    seed_style = ok(admin.post("/agents/register", json={"agent_name": unique(), "capabilities": ["seed"]}))
    assert seed_style["status"] == "registered"
    assert admin.get("/agents/agent_0000000000000000").status_code == 404


def test_update_and_deregister_revoke_the_token(hub, admin):
    reg = ok(call(admin, "agora.agents.register", agent_name=unique(), capabilities=["x"]))
    updated = ok(call(admin, "agora.agents.update", agent=reg["agent_id"], capabilities=["y"], metadata={"v": 2}))
    assert updated["capabilities"] == ["y"] and updated["metadata"] == {"v": 2}
    # null leaves a field as it was (it broke the search text before: a 500 the fuzzer found)
    patched = admin.patch(f"/agents/{reg['agent_id']}", json={"capabilities": None, "description": None, "metadata": None, "a2a": None})
    assert ok(patched)["capabilities"] == ["y"] and patched.json()["metadata"] == {"v": 2}
    gone = ok(call(admin, "agora.agents.deregister", agent=reg["agent_id"]))
    assert gone["revoked_keys"] == 1
    assert admin.get(f"/agents/{reg['agent_id']}").status_code == 404
    with hub.client(reg["agent_token"]) as me:
        assert call(me, "agora.agents.heartbeat").status_code == 401


def test_query_capabilities_all_any_status_tier_text_and_pages(hub, admin):
    tenant = new_tenant(admin, hub)
    with tenant:
        for i in range(7):
            caps = ["python"] + (["sql"] if i % 2 == 0 else []) + (["rust"] if i == 3 else [])
            ok(call(tenant, "agora.agents.register", agent_name=f"worker-{i}", capabilities=caps,
                    service_tier="enterprise" if i < 2 else "basic", description=f"number {i} crunches data"))
        assert ok(call(tenant, "agora.query.agents", capabilities=["python"]))["count"] == 7
        assert ok(call(tenant, "agora.query.agents", capabilities=["python", "sql"]))["count"] == 4
        assert ok(call(tenant, "agora.query.agents", any_capabilities=["sql", "rust"]))["count"] == 5
        assert ok(call(tenant, "agora.query.agents", service_tier="enterprise"))["count"] == 2
        assert [a["agent_name"] for a in ok(call(tenant, "agora.query.agents", text="number 3"))["agents"]] == ["worker-3"]
        assert ok(call(tenant, "agora.query.agents", status="active"))["count"] == 7
        get_style = ok(tenant.get("/agora/query/agents", params=[("capabilities", "python"), ("capabilities", "sql")]))
        assert get_style["count"] == 4
        seen, cursor = [], None
        while True:
            page = ok(call(tenant, "agora.query.agents", limit=3, **({"cursor": cursor} if cursor else {})))
            seen += [a["agent_id"] for a in page["agents"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 7
        stats = ok(call(tenant, "agora.query.marketplace"))
        assert stats["total_agents"] == 7
        assert stats["by_capability"] == {"python": 7, "sql": 4, "rust": 1}
        assert stats["by_tier"] == {"enterprise": 2, "basic": 5}


def _walk(client, **args):
    """Every page of agora.query.agents with these arguments, three at a time."""
    seen, cursor = [], None
    while True:
        page = ok(call(client, "agora.query.agents", limit=3, **args, **({"cursor": cursor} if cursor else {})))
        seen += page["agents"]
        cursor = page["next_cursor"]
        if not cursor:
            return seen


def test_query_sorts_by_name_or_status_across_pages_counts_load_and_the_admin_filters_by_tenant(hub, admin):
    tenant = new_tenant(admin, hub)
    other = new_tenant(admin, hub)
    with tenant, other:
        names = ["delta", "alpha", "echo", "charlie", "bravo", "foxtrot", "golf"]
        ids = {n: ok(call(tenant, "agora.agents.register", agent_name=n, capabilities=["sorting"]))["agent_id"] for n in names}
        ok(call(other, "agora.agents.register", agent_name="alpha"))
        ok(call(admin, "agora.admin.override", target_id=ids["echo"], action="pause", reason="sort test"))
        assert [a["agent_name"] for a in _walk(tenant, sort="name")] == sorted(names)
        by_status = [(a["status"], a["agent_name"]) for a in _walk(tenant, sort="status")]
        assert by_status == sorted(by_status) and by_status[-1] == ("paused", "echo")

        task = ok(call(tenant, "agora.task.assign", task_type="load.demo", assignee=ids["bravo"]))
        claimed = ok(call(tenant, "agora.task.claim", agent=ids["bravo"], task_types=["load.demo"]))
        assert claimed["task"]["task_id"] == task["task_id"]
        loads = {a["agent_name"]: a["load"] for a in ok(call(tenant, "agora.query.agents", include_load=True))["agents"]}
        assert loads["bravo"] == 1 and loads["alpha"] == 0
        assert ok(call(tenant, "agora.query.agents"))["agents"][0]["load"] is None  # only when asked

        tenant_id = ok(call(tenant, "agora.agents.get", agent=ids["alpha"]))["tenant_id"]
        theirs = ok(call(admin, "agora.query.agents", tenant=tenant_id, sort="name", limit=100))["agents"]
        assert [a["agent_name"] for a in theirs] == sorted(names)
        assert call(other, "agora.query.agents", tenant=tenant_id).status_code == 404  # not even whether it exists
        bad = call(tenant, "agora.query.agents", sort="name", cursor=ok(call(tenant, "agora.query.agents", limit=1))["next_cursor"])
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_argument"


def test_deprecated_v4_tool_works_with_headers(admin):
    name = unique("v4")
    r = call(admin, "agora.agents.register_capability", agent_id=name, capability_type="analysis", proficiency=80, max_tasks=3)
    body = ok(r)
    assert body["agent"]["capabilities"] == ["analysis"]
    assert r.headers["Deprecation"].startswith("@")
    assert "GMT" in r.headers["Sunset"]
    assert "agora.agents.register" in r.headers["Warning"]
    again = ok(call(admin, "agora.agents.register_capability", agent_id=name, capability_type="review"))
    assert again["agent_id"] == body["agent_id"]
    assert again["agent"]["capabilities"] == ["analysis", "review"]
