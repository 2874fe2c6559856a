"""The admin pages as the hub administrator uses them: a key created (its secret read once), used, revoked; the audit
log; an agent paused from the overrides form; and a customer refused."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from ..conftest import call, new_tenant, ok, unique
from ..hubproc import HubProcess
from .test_console_pages import LIVE, Screenshot, sign_in


def test_a_key_is_created_read_once_used_and_revoked_and_the_audit_log_says_so(
    page: Page, browser: Browser, sqlite_hub: HubProcess, screenshot: Screenshot
) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    tenant, name = unique("tenant"), unique("console-key")
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/admin")
    expect(page).to_have_url(re.compile(r"/ui/admin/keys$"))
    create = page.get_by_role("region", name="Create a key")
    create.get_by_label("Kind").select_option("customer")
    create.get_by_label("Name").fill(name)
    create.get_by_label("Tenant").fill(tenant)
    create.get_by_role("button", name="Create key").click()

    secret = page.get_by_label("New API key")
    expect(secret).to_contain_text("agora_sk_")
    expect(page.get_by_text("Copy this key now: it will not be shown again.")).to_be_visible()
    key = secret.inner_text().strip()
    row = page.get_by_role("row").filter(has_text=name)
    expect(row).to_contain_text("active")  # the table below (newest first) shows it at once
    screenshot(page, "admin-key-created")
    page.get_by_role("button", name="I have copied it: hide it").click()
    expect(page.get_by_label("New API key")).to_have_count(0)
    assert key not in page.content()
    screenshot(page, "admin-keys")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "admin-keys-phone")
    page.set_viewport_size({"width": 1280, "height": 720})

    other = browser.new_context()
    try:
        customer = other.new_page()
        sign_in(customer, sqlite_hub, key, "/ui/agents")
        expect(customer.get_by_role("heading", name="Agents")).to_be_visible()
        expect(customer.get_by_role("link", name="Admin")).to_have_count(0)

        row.get_by_text("Revoke…").click()
        row.get_by_role("button", name=re.compile(r"^Yes, revoke")).click()
        expect(row).to_contain_text("revoked")
        expect(row.get_by_role("status")).to_contain_text("signed out now")
        expect(customer).to_have_url(re.compile(r"/ui/sign-in\?next=%2Fui%2Fagents"), timeout=LIVE)
    finally:
        other.close()

    with sqlite_hub.client() as admin:
        (key_id,) = [k["key_id"] for k in ok(call(admin, "agora.admin.keys.list", tenant=tenant, include_revoked=True))["keys"]]
    page.get_by_role("navigation", name="Admin").get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()
    page.get_by_label("Target").fill(key_id)
    entries = page.get_by_role("row").filter(has_text=key_id)
    expect(entries).to_have_count(2)
    expect(entries.first).to_contain_text("key_revoked")  # newest first
    expect(entries.last).to_contain_text("key_created")
    expect(page).to_have_url(re.compile(rf"target={key_id}"))
    page.get_by_label("Target").fill("")
    expect(page).to_have_url(re.compile(r"/ui/admin/audit\?action=&target=$"))
    screenshot(page, "admin-audit")
    assert not problems, problems


def test_an_agent_is_paused_from_the_overrides_form(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    name = unique("pausable")
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["console-demo"]))
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/admin/overrides")
        now = page.locator("[data-live=admin-overrides]")
        expect(now).to_contain_text("running")
        form = page.get_by_role("region", name="An agent")
        form.get_by_label("Agent").fill("no-agent-by-this-name")
        form.get_by_label("Action").select_option("pause")
        form.get_by_label("Reason").fill("console test")
        form.get_by_role("button", name="Apply to the agent").click()
        expect(form.get_by_role("alert")).to_contain_text("no-agent-by-this-name")

        form.get_by_label("Agent").fill(name)
        form.get_by_role("button", name="Apply to the agent").click()
        expect(form.get_by_role("status")).to_contain_text(f"Agent {name} paused")
        assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["status"] == "paused"
        expect(now.get_by_role("link", name=name)).to_be_visible(timeout=LIVE)  # the live list, without a reload

        halt = page.get_by_role("region", name="The whole hub")
        halt.get_by_label("Reason to halt").fill("not really")
        expect(halt.get_by_label("I understand")).not_to_be_checked()
        screenshot(page, "admin-overrides")

        form.get_by_label("Action").select_option("resume")
        form.get_by_role("button", name="Apply to the agent").click()
        expect(now.get_by_role("link", name=name)).to_have_count(0, timeout=LIVE)
        assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["status"] == "active"


def test_a_customer_is_refused_the_admin_pages(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    with sqlite_hub.client() as admin:
        customer = new_tenant(admin, sqlite_hub)
    with customer:
        key = customer.headers["Authorization"].removeprefix("Bearer ")
    sign_in(page, sqlite_hub, key)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    response = page.goto(sqlite_hub.url + "/ui/admin")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("for the hub administrator")
    screenshot(page, "admin-refused")
