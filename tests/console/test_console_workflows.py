"""Workflows in the console as a person uses them: a real agent does the task steps, a person approves the approval
step from the run's page and watches the run finish without a reload; rejects, cancels, a bad signal, tenancy."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from agora_sdk import Agent

from ..conftest import call, new_tenant, ok, unique, until
from ..hubproc import HubProcess
from .test_console_pages import LIVE, Screenshot, sign_in


@contextlib.contextmanager
def writer(hub: HubProcess, name: str) -> Iterator[None]:
    """A real SDK agent, in a thread with its own event loop (the browser tests are sync): it drafts and publishes."""
    agent = Agent(name, url=hub.url, api_key=hub.admin_key)
    started, stop = threading.Event(), threading.Event()

    @agent.on_task()
    async def work(task: Any) -> Any:
        if task.task_type == "draft":
            return {"text": f"All about {task.payload['topic']}"}
        return {"published": task.payload["text"], "by": task.payload["by"]}

    async def main() -> None:
        await agent.start()
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await agent.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(20), "the agent did not start"
    try:
        yield
    finally:
        stop.set()
        thread.join(30)


def review_steps(agent: str) -> list[dict[str, Any]]:
    return [
        {"name": "draft", "agent": agent, "input": {"topic": "${input.topic}"}},
        {"name": "sign_off", "kind": "approval"},
        {"name": "publish", "agent": agent, "input": {"text": "${steps.draft.result.text}", "by": "${steps.sign_off.result.by}"}},
    ]


def status(api: httpx.Client, workflow_id: str) -> dict[str, Any]:
    return ok(call(api, "agora.workflow.status", workflow_id=workflow_id))  # type: ignore[no-any-return]


def node(page: Page, step: str) -> Any:
    return page.locator(f"svg [data-step={step}]")


def test_an_approval_is_approved_from_the_console_and_the_run_completes(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    problems: list[str] = []  # a CSP violation (an inline style in the drawing, say) is logged as an error
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    name = unique("writer")
    with writer(sqlite_hub, name), sqlite_hub.client() as api:
        made = ok(call(api, "agora.workflow.create", workflow_name="review", steps=review_steps(name), input={"topic": "owls"}))
        workflow_id = made["workflow_id"]
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/workflows")
        row = page.get_by_role("row").filter(has_text=workflow_id)
        expect(row).to_contain_text("running")
        screenshot(page, "workflows")

        row.get_by_role("link", name=workflow_id).click()
        expect(page.get_by_role("heading", name=re.compile("review"))).to_be_visible()
        expect(node(page, "sign_off")).to_have_attribute("data-state", "waiting", timeout=LIVE)  # the agent drafted
        expect(node(page, "draft")).to_have_attribute("data-state", "completed")
        expect(page.get_by_role("img", name="The steps of review")).to_be_visible()
        steps = page.get_by_role("table", name="Steps, their state and the data passed")
        expect(steps.get_by_role("row", name=re.compile("^sign_off"))).to_contain_text("waiting")
        expect(steps.get_by_role("row", name=re.compile("^draft"))).to_contain_text("All about owls")
        expect(page.get_by_label("Approval step")).to_have_value("sign_off")
        screenshot(page, "workflow")

        page.evaluate("window.notReloaded = true")
        page.get_by_label("Comment").fill("ship it")
        page.get_by_label("Data for the next steps (JSON)").fill('{"by": "alice"}')
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_role("status")).to_have_text("Approved step 'sign_off'.")
        live = page.locator("[data-live=workflow]")
        expect(live.locator("dl")).to_contain_text("completed", timeout=LIVE)
        expect(node(page, "publish")).to_have_attribute("data-state", "completed")
        expect(steps.get_by_role("row", name=re.compile("^publish"))).to_contain_text('"by": "alice"')
        expect(page.get_by_role("region", name="Output")).to_contain_text("All about owls")
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "workflow-completed")
        assert not problems, problems
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "workflow-phone")

        done = status(api, workflow_id)
        assert done["status"] == "completed"
        assert done["steps"][2]["result"] == {"published": "All about owls", "by": "alice"}


def test_a_bad_signal_is_refused_in_place_then_a_reject_fails_the_run(page: Page, sqlite_hub: HubProcess) -> None:
    steps = [{"name": "gate", "kind": "approval"}, {"name": "after", "kind": "approval"}]
    with sqlite_hub.client() as api:
        workflow_id = ok(call(api, "agora.workflow.create", workflow_name="gated", steps=steps))["workflow_id"]
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/workflows/{workflow_id}")
        expect(node(page, "gate")).to_have_attribute("data-state", "waiting")

        page.get_by_label("Data for the next steps (JSON)").fill("{not json")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#signal-result").get_by_role("alert")).to_contain_text("data is not valid JSON")
        assert status(api, workflow_id)["steps"][0]["state"] == "waiting"  # nothing changed

        page.get_by_label("Approval step").select_option("after")
        page.get_by_label("Data for the next steps (JSON)").fill("")
        page.get_by_role("button", name="Approve").click()
        expect(page.locator("#signal-result").get_by_role("alert")).to_contain_text("not waiting for a signal")

        page.get_by_label("Approval step").select_option("gate")
        page.get_by_label("Comment").fill("not this week")
        page.get_by_role("button", name="Reject").click()
        expect(page.get_by_role("status")).to_have_text("Rejected step 'gate'.")
        expect(page.locator("[data-live=workflow] dl")).to_contain_text("failed", timeout=LIVE)
        expect(node(page, "after")).to_have_attribute("data-state", "cancelled")
        expect(page.get_by_role("row", name=re.compile("^gate"))).to_contain_text("not this week")
        assert status(api, workflow_id)["status"] == "failed"


def test_a_run_is_cancelled_and_another_tenant_gets_not_found(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    with sqlite_hub.client() as admin:
        mine, theirs = new_tenant(admin, sqlite_hub), new_tenant(admin, sqlite_hub)
    with mine, theirs:
        sign_in(page, sqlite_hub, mine.headers["Authorization"].removeprefix("Bearer "), "/ui/workflows")
        expect(page.get_by_text("No workflows yet")).to_be_visible()
        expect(page.get_by_text("agora call workflow.create")).to_be_visible()
        screenshot(page, "workflows-empty")
        steps = [{"name": "wait", "kind": "approval"}]
        own = ok(call(mine, "agora.workflow.create", workflow_name="mine", steps=steps))["workflow_id"]
        foreign = ok(call(theirs, "agora.workflow.create", workflow_name="theirs", steps=steps))["workflow_id"]
        expect(page.get_by_role("link", name=own)).to_be_visible(timeout=LIVE)  # the list is live too
        page.goto(f"{sqlite_hub.url}/ui/workflows/{own}")
        page.get_by_label("Reason to cancel").fill("wrong input")
        page.get_by_role("button", name="Cancel workflow").click()
        expect(page.get_by_role("status")).to_have_text("Workflow cancelled.")
        expect(page.locator("[data-live=workflow] dl")).to_contain_text("cancelled", timeout=LIVE)
        expect(page.get_by_role("row", name=re.compile("^wait"))).to_contain_text("wrong input")
        assert until(lambda: status(mine, own)["status"] == "cancelled", "the run was not cancelled")

        page.goto(f"{sqlite_hub.url}/ui/workflows?status=cancelled")
        expect(page.get_by_role("link", name=own)).to_be_visible()
        response = page.goto(f"{sqlite_hub.url}/ui/workflows/{foreign}")
        assert response is not None and response.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        assert status(theirs, foreign)["status"] == "running"
