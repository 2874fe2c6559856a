"""Schedules in the console as a person uses them: the list, a schedule's page with its next runs and history, Run
now, pause with a note and resume; a tick's task is one click away; a viewer sees it all without the buttons."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from playwright.sync_api import Page, expect

from ..conftest import call, new_tenant, ok, unique
from ..hubproc import HubProcess
from .test_console_pages import LIVE, Screenshot, sign_in


def schedule(api: httpx.Client, name: str) -> dict[str, Any]:
    return ok(call(api, "agora.schedules.get", schedule=name))  # type: ignore[no-any-return]


def test_run_now_pause_and_resume_from_a_schedules_page(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    problems: list[str] = []  # a CSP violation is logged as an error
    page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
    with sqlite_hub.client() as admin:
        tenant = unique("tenant")
        mine = sqlite_hub.client(ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant))["key"])
        viewer = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, role="viewer"))["key"]
        theirs = new_tenant(admin, sqlite_hub)
    agent, beat, weekly = unique("pinged"), unique("heartbeat"), unique("weekly")
    with mine, theirs:
        ok(call(mine, "agora.agents.register", agent_name=agent))
        # The shared hub keeps the 10 s minimum interval: its first tick is start_at, a second on, then Run now makes the rest.
        soon = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
        ok(call(mine, "agora.schedules.create", name=beat, trigger="every 10s", start_at=soon, action={"message": {"to_agent": agent, "content": {"at": "{{tick}}"}}}))
        task = {"task": {"task_type": "report", "required_capabilities": ["summarize"], "payload": {"week_of": "{{tick}}"}}}
        ok(call(mine, "agora.schedules.create", name=weekly, trigger="0 9 * * 1", timezone="Europe/Berlin", action=task, paused=True, description="The weekly report"))
        foreign = ok(call(theirs, "agora.schedules.create", name="theirs", trigger="@daily", action=task))["schedule_id"]

        sign_in(page, sqlite_hub, mine.headers["Authorization"].removeprefix("Bearer "), "/ui/schedules")
        expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
        beat_row, weekly_row = page.get_by_role("row").filter(has_text=beat), page.get_by_role("row").filter(has_text=weekly)
        expect(beat_row).to_contain_text("Every 10 seconds")
        expect(beat_row).to_contain_text("active")
        expect(beat_row).to_contain_text("fired", timeout=LIVE)  # its first tick
        expect(weekly_row).to_contain_text("At 09:00 AM, only on Monday (Europe/Berlin)")
        expect(weekly_row).to_contain_text("paused")
        expect(weekly_row).to_contain_text("none yet")
        expect(page.get_by_role("row").filter(has_text="theirs")).to_have_count(0)
        screenshot(page, "schedules")

        beat_row.get_by_role("link", name=beat).click()
        expect(page.get_by_role("heading", name=beat)).to_be_visible()
        live = page.locator("[data-live=schedule]")
        expect(live.locator("dl")).to_contain_text("Every 10 seconds")
        expect(page.get_by_role("list", name="Next runs").get_by_role("listitem")).to_have_count(5)
        ticks = page.get_by_role("table", name="Ticks, newest first")
        expect(ticks.get_by_role("row").filter(has_text="clock").first).to_contain_text("fired")  # (another may follow 10 s on)
        expect(ticks.get_by_role("row").filter(has_text="run now")).to_have_count(0)

        page.evaluate("window.notReloaded = true")
        page.get_by_role("button", name="Run now").click()
        expect(page.get_by_role("status")).to_have_text(re.compile(r"^Ran now — fired: message msg_\w+\.$"))
        manual = ticks.get_by_role("row").filter(has_text="run now")
        expect(manual).to_have_count(1, timeout=LIVE)
        expect(manual).to_contain_text("fired")
        expect(manual).to_contain_text("sent")
        screenshot(page, "schedule")

        page.get_by_label("Note on pausing").fill("maintenance window")
        page.get_by_role("button", name="Pause").click()
        expect(page.get_by_role("status")).to_have_text("Paused.")
        expect(live.locator("dl")).to_contain_text("paused — paused: maintenance window", timeout=LIVE)
        expect(live.get_by_text("None: it is paused.")).to_be_visible()
        assert schedule(mine, beat)["status"] == "paused"
        page.get_by_role("button", name="Resume").click()
        expect(page.get_by_role("status")).to_have_text("Resumed.")
        expect(live.locator("dl dd").first).to_have_text("active", timeout=LIVE)
        assert page.evaluate("window.notReloaded") is True
        assert schedule(mine, beat)["status"] == "active"

        page.goto(f"{sqlite_hub.url}/ui/schedules/{weekly}")  # by name; a paused schedule runs now too
        expect(page.get_by_text("The weekly report")).to_be_visible()
        page.get_by_role("button", name="Run now").click()
        expect(page.get_by_role("status")).to_contain_text("fired: task task_")
        task_link = page.get_by_role("table", name="Ticks, newest first").get_by_role("link", name=re.compile(r"^task_"))
        expect(task_link).to_be_visible(timeout=LIVE)
        screenshot(page, "schedule-task")
        page.set_viewport_size({"width": 390, "height": 844})
        screenshot(page, "schedule-phone")
        page.set_viewport_size({"width": 1280, "height": 720})
        task_id = task_link.inner_text()
        task_link.click()
        expect(page.get_by_role("heading", name=f"Task {task_id}")).to_be_visible()
        expect(page.locator("[data-live=task]")).to_contain_text("week_of")
        assert not problems, problems

        response = page.goto(f"{sqlite_hub.url}/ui/schedules/{foreign}")
        assert response is not None and response.status == 404

        page.get_by_role("button", name="Sign out").click()
        sign_in(page, sqlite_hub, viewer, f"/ui/schedules/{beat}")
        expect(page.get_by_role("heading", name=beat)).to_be_visible()
        expect(page.get_by_role("table", name="Ticks, newest first").get_by_role("row").filter(has_text="run now")).to_have_count(1)
        expect(page.get_by_role("button", name="Run now")).to_have_count(0)
        expect(page.get_by_role("button", name="Pause")).to_have_count(0)
        expect(page.get_by_role("heading", name="Step in")).to_have_count(0)
        csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "agora_csrf")
        refused = page.request.post(f"{sqlite_hub.url}/ui/schedules/{beat}/pause", form={"csrf_token": csrf})
        assert refused.status == 403 and "schedules:write" in refused.text()  # a hand-made post is the catalog's to refuse
        assert schedule(mine, beat)["status"] == "active"
        for api, ref in ((mine, beat), (mine, weekly), (theirs, foreign)):  # the shared hub fires them no more
            ok(call(api, "agora.schedules.delete", schedule=ref))
