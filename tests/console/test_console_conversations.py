"""Conversations on the console: listed by last activity, a page per conversation showing the exchange as a thread
with each task's output inline and live, and "continue" reaching the agent with the earlier turns as history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from ..conftest import call, ok, unique
from ..hubproc import HubProcess
from .test_console_pages import LIVE, sign_in

Screenshot = Callable[[Page, str], tuple[Path, Path]]


def test_a_conversation_continued_from_the_console_reaches_the_agent_with_its_history(
    page: Page, sqlite_hub: HubProcess, screenshot: Screenshot
) -> None:
    kind, talk = unique("plan").replace("-", "."), unique("launch")
    with sqlite_hub.client() as admin:
        writer = ok(call(admin, "agora.agents.register", agent_name=unique("planner"), capabilities=["planning"]))
        first = ok(call(admin, "agora.task.assign", task_type=kind, assignee=writer["agent_id"], payload={"text": "Plan the launch"}, conversation_id=talk))
        viewer_key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant="default", role="viewer"))["key"]
    with sqlite_hub.client(writer["agent_token"]) as agent:
        lease = ok(call(agent, "agora.task.claim", task_types=[kind]))["lease"]["token"]
        ok(call(agent, "agora.task.emit", task_id=first["task_id"], lease_token=lease, chunks=[{"text": "1. Pick a date. "}, {"text": "2. Tell the press."}]))
        ok(call(agent, "agora.task.update", task_id=first["task_id"], status="completed", lease_token=lease, result={"steps": 2}))

        sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/conversations")
        row = page.get_by_role("row").filter(has_text=talk)
        expect(row).to_contain_text("Plan the launch")
        expect(row).to_contain_text(writer["agent_name"])
        row.get_by_role("link", name="Plan the launch").click()
        thread = page.locator("[data-live=conversation]")
        expect(thread.get_by_label(f"Output of task {first['task_id']}")).to_have_text("1. Pick a date. 2. Tell the press.")
        page.evaluate("window.notReloaded = true")

        page.get_by_label("Your next turn").fill("Now the budget, please")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_role("status")).to_contain_text("Sent as a task, with 2 earlier turns.")
        expect(page.get_by_label("Your next turn")).to_have_value("")  # ready for the one after
        expect(thread).to_contain_text("Now the budget, please", timeout=LIVE)  # the new turn, live

        # The agent gets the next turn as a task of the same type, the earlier ones as its history.
        claimed = ok(call(agent, "agora.task.claim", task_types=[kind]))
        task = claimed["task"]
        assert task["conversation_id"] == talk and task["payload"]["text"] == "Now the budget, please"
        assert [(h["role"], h["text"]) for h in task["payload"]["history"]] == [
            ("user", "Plan the launch"), ("agent", "1. Pick a date. 2. Tell the press."),
        ]  # fmt: skip
        # What it emits shows in the thread as it comes, without a reload.
        ok(call(agent, "agora.task.emit", task_id=task["task_id"], lease_token=claimed["lease"]["token"], chunks=[{"text": "Budget: 10k"}]))
        expect(thread.get_by_label(f"Output of task {task['task_id']}")).to_have_text("Budget: 10k", timeout=LIVE)
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "conversation")

    # A viewer reads the thread and is not offered what would be refused.
    page.context.clear_cookies()
    sign_in(page, sqlite_hub, viewer_key, f"/ui/conversations/{talk}")
    expect(page.locator("[data-live=conversation]")).to_contain_text("Budget: 10k")
    expect(page.get_by_role("heading", name="Continue")).to_have_count(0)
