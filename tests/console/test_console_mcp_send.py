"""The MCP and Send pages as a person uses them: Chromium against a real hub, real SDK clients on the agents' side,
and a real upstream MCP server (tests/mcp_upstream.py) registered from the page."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from agora_sdk import AgoraClient

from ..conftest import call, ok, unique
from ..hubproc import FixtureServer, HubProcess
from .test_console_pages import LIVE, Screenshot, sign_in

UPSTREAM = str(Path(__file__).parent.parent / "mcp_upstream.py")
TOKEN = "console-upstream-secret"


def test_a_message_sent_from_the_page_reaches_the_agent_and_bad_json_sends_nothing(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("listener")))
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/send?to={agent['agent_name']}")
    expect(page.get_by_role("heading", name="Send", exact=True)).to_be_visible()
    form = page.locator("#send-message")
    expect(form.get_by_label("To agent")).to_have_value(agent["agent_name"])
    expect(page.locator("#send-task").get_by_label("Assignee")).to_have_value(agent["agent_name"])

    form.get_by_label("JSON").check()
    form.get_by_label("Content", exact=True).fill('{"step": "in", ')
    form.get_by_role("button", name="Send message").click()
    expect(form.locator("#msg-content-error")).to_contain_text("not valid JSON")
    expect(form.get_by_label("Content", exact=True)).to_have_value('{"step": "in", ')  # kept, to fix
    with AgoraClient(sqlite_hub.url, agent["agent_token"]) as me:
        assert me.messaging.receive(wait=0.5).messages == []

        form.get_by_label("Content", exact=True).fill('{"step": "in", "why": "a person said so"}')
        form.get_by_label("Message type").fill("console.note")
        form.get_by_label("Performative").select_option("request")
        form.get_by_label("Priority").select_option("urgent")
        form.get_by_role("button", name="Send message").click()
        expect(form.get_by_role("status")).to_contain_text("Sent msg_")
        screenshot(page, "send")

        [message] = me.messaging.receive(wait=5).messages
    assert message.content == {"step": "in", "why": "a person said so"}
    assert message.from_agent == "system"  # an API key's message is the hub's, never an agent's
    assert (message.message_type, message.performative.value, message.priority.name) == ("console.note", "request", "urgent")


def test_a_task_assigned_from_the_page_is_claimed_by_the_agent(page: Page, sqlite_hub: HubProcess) -> None:
    kind = unique("console.job").replace("-", ".")
    with sqlite_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("worker"), capabilities=["console-work"]))
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/send")
    form = page.locator("#send-task")
    form.get_by_label("Task type").fill(kind)
    form.get_by_label("…or capabilities").fill("console-work")
    form.get_by_label("Priority").select_option("high")
    form.get_by_label("Payload (JSON object)").fill('{"rows": 3}')
    form.get_by_role("button", name="Assign task").click()
    expect(form.get_by_role("status")).to_contain_text("is pending")
    form.get_by_role("link", name="See the task").click()
    expect(page).to_have_url(re.compile(r"/ui/tasks/task_"))
    task_id = page.url.rsplit("/", 1)[1]
    live = page.locator("[data-live=task]")
    expect(live).to_contain_text("pending")

    with AgoraClient(sqlite_hub.url, agent["agent_token"]) as me:
        claimed = me.task.claim(task_types=[kind], wait=5)
    assert claimed.task is not None and claimed.task.task_id == task_id
    assert claimed.task.payload == {"rows": 3} and claimed.task.priority.name == "high"
    expect(live).to_contain_text(agent["agent_id"], timeout=LIVE)


def test_try_it_on_a_read_only_tool_shows_the_result_and_a_bad_value_in_place(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    name = unique("findme")
    with sqlite_hub.client() as admin:
        ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["console-try"]))
    problems: list[str] = []  # a CSP violation (an inline style or script) is logged as an error
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/mcp")
    expect(page.get_by_role("heading", name="Upstream MCP servers")).to_be_visible()
    expect(page.get_by_text('"mcpServers"')).to_be_visible()
    screenshot(page, "mcp")

    page.get_by_label("Find tools").fill("query agents")
    expect(page).to_have_url(re.compile(r"q=query"))
    expect(page.get_by_text("1 tool", exact=True)).to_be_visible()  # the search's own swap is done before the click
    page.get_by_role("link", name="agora.query.agents").click()
    expect(page.get_by_role("heading", name="agora.query.agents")).to_be_visible(timeout=15_000)  # a loaded CI runner
    expect(page.get_by_text("This tool changes things")).to_have_count(0)

    page.get_by_label("limit", exact=True).fill("ten")
    page.get_by_role("button", name="Try it").click()
    expect(page.locator("#arg-limit-error")).to_have_text("a whole number, please")
    expect(page.get_by_role("alert")).to_contain_text("400")

    page.get_by_label("limit", exact=True).fill("10")
    page.get_by_label("text", exact=True).fill(name)
    page.get_by_label("capabilities", exact=True).fill('["console-try"]')
    page.get_by_role("button", name="Try it").click()
    result = page.get_by_label("Result")
    expect(result).to_contain_text(name)
    expect(result).to_contain_text('"count": 1')
    screenshot(page, "mcp-tool")

    page.goto(sqlite_hub.url + "/ui/mcp/tools/agora.agents.register")
    expect(page.get_by_text("This tool changes things")).to_be_visible()
    expect(page.get_by_role("button", name="Call it for real")).to_be_visible()
    page.goto(sqlite_hub.url + "/ui/send")
    page.wait_for_timeout(300)
    assert not [p for p in problems if "400" not in p], problems  # (the bad value's 400 is logged by the browser)


def test_a_result_clicked_at_a_person_s_pace_after_searching_is_followed(page: Page, sqlite_hub: HubProcess) -> None:
    """Pressing the mouse on a result takes the focus from the search box, which fires the form's change trigger.
    A person's press lasts ~100 ms: a search run again for that would swap the list under the pointer before the
    button comes up, and the click would land on nothing (it did, in CI, with Playwright's quicker clicks)."""
    sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/mcp")
    page.get_by_label("Find tools").fill("query agents")
    expect(page.get_by_text("1 tool", exact=True)).to_be_visible()

    page.get_by_role("link", name="agora.query.agents").hover()
    page.mouse.down()
    page.wait_for_timeout(300)
    page.mouse.up()
    expect(page.get_by_role("heading", name="agora.query.agents")).to_be_visible(timeout=LIVE)


def test_an_upstream_server_is_registered_tried_and_removed_from_the_page(page: Page, sqlite_hub: HubProcess) -> None:
    server = unique("up").replace("-", "")[:20]
    upstream = FixtureServer(UPSTREAM, ["--http", "{port}", "--token", TOKEN], probe="/mcp").start()
    try:
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/mcp")
        page.get_by_text("Register a server").click()
        page.get_by_label("Server name").fill(server)
        page.get_by_label("URL").fill(f"{upstream.origin}/mcp")
        page.get_by_label("Bearer token").fill("wrong-token")
        page.get_by_role("button", name="Register").click()
        expect(page.locator("#mcp-reg-url-error")).to_be_visible()  # refused upstream: said beside the URL
        expect(page.get_by_label("Server name")).to_have_value(server)

        page.get_by_label("Bearer token").fill(TOKEN)
        page.get_by_role("button", name="Register").click()
        expect(page.locator("#mcp-servers-result").get_by_role("status")).to_contain_text(f"{server} is up")
        row = page.locator("[data-live=mcp-servers]").get_by_role("row").filter(has_text=server)
        expect(row).to_contain_text("up")
        assert TOKEN not in page.content()

        row.get_by_role("link", name=f"ext.{server}.add").click()
        page.get_by_label("a", exact=True).fill("2")
        page.get_by_label("b", exact=True).fill("40")
        page.get_by_role("button", name=re.compile("Try it|Call it for real")).click()
        expect(page.get_by_label("Result")).to_contain_text('"result": 42')

        page.goto(sqlite_hub.url + "/ui/mcp")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name=f"Remove {server}").click()
        expect(page.locator("#mcp-servers-result").get_by_role("status")).to_contain_text(f"{server} removed")
        expect(page.get_by_role("button", name=f"Remove {server}")).to_have_count(0)
    finally:
        upstream.kill()
    with sqlite_hub.client() as admin:
        assert server not in {s["name"] for s in ok(call(admin, "agora.mcp_servers.list"))["servers"]}
