"""The console as a person uses it: Chromium against a real hub, asserting on what is on the screen."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from ..conftest import call, new_tenant, ok, unique
from ..hubproc import HubProcess

Screenshot = Callable[[Page, str], tuple[Path, Path]]
LIVE = 5_000  # ms a live update may take here before the test fails (the console's own lag is ~0.25 s)


def sign_in(page: Page, hub: HubProcess, key: str, path: str = "/ui") -> None:
    page.goto(hub.url + path)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in with the key").click()


def test_sign_in_pages_and_sign_out(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    page.goto(sqlite_hub.url + "/ui")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))
    screenshot(page, "sign-in")
    page.get_by_label("API key").fill("agora_sk_" + "x" * 43)
    page.get_by_role("button", name="Sign in with the key").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")

    page.get_by_label("API key").fill(sqlite_hub.admin_key)
    page.get_by_role("button", name="Sign in with the key").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("heading", name="Health")).to_be_visible()
    screenshot(page, "overview")

    page.get_by_role("link", name="Agents", exact=True).click()
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    screenshot(page, "agents")
    page.get_by_role("link", name="Tasks", exact=True).click()
    expect(page.get_by_role("heading", name="Tasks")).to_be_visible()
    screenshot(page, "tasks")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Agora")).to_be_visible()
    page.goto(sqlite_hub.url + "/ui/agents")
    expect(page).to_have_url(re.compile(r"/ui/sign-in"))


def test_an_agent_status_change_shows_without_a_reload(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    name = unique("live")
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["console-demo"], description="Shows up live"))
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/agents?q={name}")
        row = page.get_by_role("row").filter(has_text=name)
        expect(row).to_contain_text("active")
        page.evaluate("window.notReloaded = true")
        ok(call(admin, "agora.admin.override", target_id=name, action="pause", reason="console test"))
        expect(row).to_contain_text("paused", timeout=LIVE)
        assert page.evaluate("window.notReloaded") is True

        row.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", name=name)).to_be_visible()
        expect(page.get_by_text(agent["agent_id"])).to_be_visible()
        screenshot(page, "agent")
        ok(call(admin, "agora.admin.override", target_id=name, action="resume", reason="console test"))
        expect(page.locator("[data-live=agent]")).to_contain_text("active", timeout=LIVE)


def test_search_filters_live_in_the_url(page: Page, sqlite_hub: HubProcess) -> None:
    stem = unique("find")
    with sqlite_hub.client() as admin:
        for suffix in ("apple", "pear"):
            ok(call(admin, "agora.agents.register", agent_name=f"{stem}-{suffix}"))
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/agents")
    page.get_by_label("Search").fill(f"{stem}-pear")
    expect(page).to_have_url(re.compile(rf"q={stem}-pear"))
    expect(page.get_by_role("link", name=f"{stem}-pear")).to_be_visible()
    expect(page.get_by_role("link", name=f"{stem}-apple")).to_have_count(0)
    page.reload()  # the filter is in the URL: a bookmark shows the same
    expect(page.get_by_label("Search")).to_have_value(f"{stem}-pear")
    expect(page.get_by_role("link", name=f"{stem}-apple")).to_have_count(0)


def test_a_task_is_cancelled_from_the_console(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    with sqlite_hub.client() as admin:
        task = ok(call(admin, "agora.task.assign", task_type="console.cancel", required_capabilities=["nobody-yet"], payload={"n": 1}))
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/tasks/{task['task_id']}")
        live = page.locator("[data-live=task]")
        expect(live).to_contain_text("pending")
        screenshot(page, "task")
        page.get_by_label("Reason to cancel").fill("changed my mind")
        page.get_by_role("button", name="Cancel task").click()
        expect(page.get_by_role("status")).to_have_text("Cancelled.")
        expect(live).to_contain_text("changed my mind", timeout=LIVE)
        assert ok(call(admin, "agora.task.get", task_id=task["task_id"]))["status"] == "cancelled"
        page.get_by_role("button", name="Requeue (retry)").click()
        expect(page.get_by_role("alert")).to_contain_text("only dead-lettered or failed tasks are requeued")
        assert ok(call(admin, "agora.task.get", task_id=task["task_id"]))["status"] == "cancelled"


def test_a_tenant_sees_its_own_and_a_foreign_url_is_not_found(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    with sqlite_hub.client() as admin:
        mine, theirs = new_tenant(admin, sqlite_hub), new_tenant(admin, sqlite_hub)
    with mine, theirs:
        own = ok(call(mine, "agora.agents.register", agent_name=unique("own")))
        foreign = ok(call(theirs, "agora.agents.register", agent_name=unique("foreign")))
        key = mine.headers["Authorization"].removeprefix("Bearer ")
    sign_in(page, sqlite_hub, key, "/ui/agents")
    expect(page.get_by_role("link", name=own["agent_name"])).to_be_visible()
    expect(page.get_by_text(foreign["agent_name"])).to_have_count(0)
    response = page.goto(f"{sqlite_hub.url}/ui/agents/{foreign['agent_id']}")
    assert response is not None and response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    screenshot(page, "not-found")


def test_a_revoked_key_sends_an_open_page_to_sign_in(page: Page, sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
        sign_in(page, sqlite_hub, created["key"], "/ui/agents")
        expect(page.get_by_role("heading", name="Agents")).to_be_visible()
        ok(call(admin, "agora.admin.keys.revoke", key_id=created["info"]["key_id"]))
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=%2Fui%2Fagents"), timeout=LIVE)


def test_pages_have_no_console_errors_and_no_outside_requests(page: Page, sqlite_hub: HubProcess) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(sqlite_hub.url) else None)
    sign_in(page, sqlite_hub, sqlite_hub.admin_key)
    for path in ("/ui", "/ui/agents", "/ui/tasks"):
        page.goto(sqlite_hub.url + path)
        page.wait_for_timeout(300)  # the live stream connects; a CSP violation would be logged by now
    assert not problems, problems
    assert not outside, outside
    assert httpx.get(sqlite_hub.url + "/ui/static/vendor/htmx.min.js").headers["cache-control"].startswith("public")


def test_a_message_appears_in_the_live_tail_and_the_exports_match_the_filter(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    word = unique("word")
    with sqlite_hub.client() as admin:
        sender = ok(call(admin, "agora.agents.register", agent_name=unique("sender")))
        sink = ok(call(admin, "agora.agents.register", agent_name=unique("sink")))
        with sqlite_hub.client(sender["agent_token"]) as agent:
            ok(call(agent, "agora.messaging.send", to_agent=sink["agent_id"], content={"text": f"{word} one"}))
            ok(call(agent, "agora.messaging.send", to_agent=sink["agent_id"], content={"text": "not this one"}))
            sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/messages?q={word}")
            rows = page.locator("[data-live=messages] tbody tr")
            expect(rows).to_have_count(1)
            page.evaluate("window.notReloaded = true")
            ok(call(agent, "agora.messaging.send", to_agent=sink["agent_id"], content={"text": f"{word} two"}))
            expect(rows).to_have_count(2, timeout=LIVE)
            expect(rows.first).to_contain_text(f"{word} two")  # newest first
            assert page.evaluate("window.notReloaded") is True
            screenshot(page, "messages")

    with page.expect_download() as csv_download:
        page.get_by_role("link", name="CSV").click()
    lines = Path(csv_download.value.path()).read_text().splitlines()
    assert lines[0].startswith("message_id,seq,") and len(lines) == 3
    assert f"{word} two" in lines[1] and f"{word} one" in lines[2]
    with page.expect_download() as jsonl_download:
        page.get_by_role("link", name="JSON Lines").click()
    exported = [json.loads(line) for line in Path(jsonl_download.value.path()).read_text().splitlines()]
    assert [m["content"]["text"] for m in exported] == [f"{word} two", f"{word} one"]
    assert {m["from_agent"] for m in exported} == {sender["agent_id"]}


def test_a_failed_task_is_requeued_reprioritised_and_reassigned_and_the_agents_see_it(page: Page, sqlite_hub: HubProcess) -> None:
    kind = unique("job").replace("-", ".")
    with sqlite_hub.client() as admin:
        first = ok(call(admin, "agora.agents.register", agent_name=unique("first")))
        second = ok(call(admin, "agora.agents.register", agent_name=unique("second")))
        task = ok(call(admin, "agora.task.assign", task_type=kind, assignee=first["agent_id"]))
    with sqlite_hub.client(first["agent_token"]) as one, sqlite_hub.client(second["agent_token"]) as two:
        claimed = ok(call(one, "agora.task.claim", task_types=[kind]))
        ok(call(one, "agora.task.update", task_id=task["task_id"], status="failed", lease_token=claimed["lease"]["token"]))

        sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/tasks/{task['task_id']}")
        live = page.locator("[data-live=task]")
        expect(live).to_contain_text("failed")
        page.get_by_role("button", name="Requeue (retry)").click()
        expect(page.get_by_role("status")).to_have_text("Back in the queue.")
        expect(live.get_by_text("pending").first).to_be_visible(timeout=LIVE)

        page.get_by_label("Priority").select_option("urgent")
        page.get_by_role("button", name="Set priority").click()
        expect(live).to_contain_text("urgent", timeout=LIVE)

        page.get_by_label("Reassign to agent").fill(second["agent_name"])
        page.get_by_role("button", name="Reassign").click()
        expect(page.locator("#reassign-result")).to_have_text("Reassigned.")
        expect(live).to_contain_text(second["agent_id"], timeout=LIVE)

        assert ok(call(one, "agora.task.claim", task_types=[kind]))["task"] is None  # no longer the first agent's
        taken = ok(call(two, "agora.task.claim", task_types=[kind]))["task"]
        assert taken["task_id"] == task["task_id"] and taken["priority"] == "urgent"

        page.get_by_label("Reassign to agent").fill("nobody-by-this-name")
        page.get_by_role("button", name="Reassign").click()
        expect(page.locator("#reassign-result").get_by_role("alert")).to_be_visible()
        assert ok(call(two, "agora.task.get", task_id=task["task_id"]))["claimed_by"] == second["agent_id"]


def test_the_overview_charts_what_happens_without_a_reload(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    with sqlite_hub.client() as admin:
        mine = new_tenant(admin, sqlite_hub)
    with mine:
        sink = ok(call(mine, "agora.agents.register", agent_name=unique("sink")))
        sign_in(page, sqlite_hub, mine.headers["Authorization"].removeprefix("Bearer "))
        messages = page.locator("figure[data-chart]").filter(has_text="Messages stored per second")
        expect(messages.locator("canvas").first).to_be_visible()

        def stored() -> float:
            data = json.loads(messages.get_attribute("data-chart") or "{}")
            return sum(v for v in data["series"][0]["values"] if v) * 10  # rates per second over 10 s intervals

        before = stored()
        page.evaluate("window.notReloaded = true")
        for n in range(5):
            ok(call(mine, "agora.messaging.send", to_agent=sink["agent_id"], content={"n": n}))
        page.wait_for_function(
            "([before]) => { const f = [...document.querySelectorAll('figure[data-chart]')][0];"
            " return JSON.parse(f.dataset.chart).series[0].values.reduce((a, v) => a + (v || 0), 0) * 10 >= before + 5 - 1e-6; }",
            arg=[before], timeout=LIVE,
        )
        assert round(stored() - before) == 5
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "overview-activity")


def test_agents_sort_by_a_column_and_the_admin_filters_by_tenant(page: Page, sqlite_hub: HubProcess) -> None:
    stem = unique("sorted")
    with sqlite_hub.client() as admin:
        mine, theirs = new_tenant(admin, sqlite_hub), new_tenant(admin, sqlite_hub)
        with mine, theirs:
            for suffix in ("b", "c", "a"):
                agent = ok(call(mine, "agora.agents.register", agent_name=f"{stem}-{suffix}"))
            ok(call(theirs, "agora.agents.register", agent_name=f"{stem}-z"))
        tenant_id = agent["agent"]["tenant_id"]
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/agents?q={stem}")
    names = page.locator("[data-live=agents] tbody tr td:first-child")
    expect(names).to_have_count(4)
    page.get_by_role("link", name="Name", exact=True).click()
    expect(page).to_have_url(re.compile(r"sort=name"))
    expect(names).to_have_text([f"{stem}-a", f"{stem}-b", f"{stem}-c", f"{stem}-z"])
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute("aria-sort", "ascending")
    page.get_by_label("Tenant").fill(tenant_id)
    expect(page).to_have_url(re.compile(rf"tenant={tenant_id}"))
    expect(names).to_have_text([f"{stem}-a", f"{stem}-b", f"{stem}-c"])  # still by name, only that tenant's
