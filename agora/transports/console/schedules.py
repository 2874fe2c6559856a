"""Schedules: the tenant's schedules, and a page per schedule with its next runs and its ticks; pause (with a note),
resume, run now.

Everything comes from ``agora.schedules.*`` and every change is a catalog call. A tick announces no event of its own:
a live region wakes on what a tick starts (a task or workflow event, a message) and renders again every few seconds
for the rest (a skipped, missed or refused tick; the next runs moving on). A change made on the page (a pause starts
nothing) makes the page fetch its region again at once (the ``schedule-changed`` trigger, as the admin keys page does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError, NotFound
from agora_sdk.wire.schedules import RanNow, Schedule, ScheduleStatus

from .door import View, page
from .liveviews import live_view
from .pages import list_page, may, tool_args
from .render import render_text

STATUSES = [s.value for s in ScheduleStatus]
FILTERS = {"status": "status", "cursor": "cursor"}
TICKS = 20  # a page of history
RUN_PAGES = {"task": "/ui/tasks/", "workflow": "/ui/workflows/"}  # what a tick started, where the console shows it


def in_zone(value: datetime, zone: str) -> str:
    """A time as the schedule's clock reads it: ``Mon 2026-12-07 09:00:00 CET``."""
    return value.astimezone(ZoneInfo(zone)).strftime("%a %Y-%m-%d %H:%M:%S %Z")


@live_view("schedules", wakes_on=("events", "messages"), every=10.0)
async def schedules_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.schedules.list", **tool_args(params, FILTERS, {"status": STATUSES}))
    html = render_text("_schedules_rows.html", view=view, schedules=found.schedules, next_cursor=found.next_cursor, params=params, in_zone=in_zone)
    return {"schedules": html}


async def _schedule_parts(view: View, ref: str, cursor: str | None) -> tuple[Schedule, dict[str, str]]:
    schedule = await view.call("agora.schedules.get", schedule=ref)
    history = await view.call("agora.schedules.history", schedule=schedule.schedule_id, cursor=cursor, limit=TICKS)
    html = render_text("_schedule_live.html", view=view, schedule=schedule, history=history, cursor=cursor, in_zone=in_zone, run_pages=RUN_PAGES)
    return schedule, {"schedule": html}


@live_view("schedule", wakes_on=("events", "messages"), every=5.0)
async def schedule_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    return (await _schedule_parts(view, params.get("schedule", ""), params.get("cursor") or None))[1]


@page
async def schedules(view: View) -> Response:
    return await list_page(view, "schedules", "Schedules", statuses=STATUSES)


@page
async def schedule(view: View) -> Response:
    """A schedule's page; fetched again by htmx after a change made on it: its live region alone."""
    cursor = view.request.query_params.get("cursor") or None
    found, fragments = await _schedule_parts(view, view.request.path_params["schedule"], cursor)
    query = urlencode({"schedule": found.schedule_id, **({"cursor": cursor} if cursor else {})})
    if view.partial:
        return view.render("_region.html", name="schedule", query=query, html=fragments["schedule"])
    writes = may(view, "agora.schedules.pause")
    return view.render("schedule.html", title=found.name, nav="schedules", fragments=fragments, schedule=found, query=query, writes=writes)


def _ran(tick: RanNow) -> str:
    made = f": {tick.tick.run_kind} {tick.tick.run_id}" if tick.tick.run_id else ""
    return f"Ran now — {tick.tick.outcome.value}{made}" + (f" ({tick.tick.reason})" if tick.tick.reason else "") + "."


def _resumed(found: Schedule) -> str:
    return " ".join(["Resumed.", *found.warnings])


# What a person may do to a schedule from its page: the tool, the form's fields as its arguments, what to say after.
ACTIONS: dict[str, tuple[str, Callable[[Mapping[str, Any]], dict[str, Any]], Callable[[Any], str]]] = {
    "pause": ("agora.schedules.pause", lambda form: {"note": str(form.get("note") or "").strip() or None}, lambda _: "Paused."),
    "resume": ("agora.schedules.resume", lambda form: {}, _resumed),
    "run": ("agora.schedules.run_now", lambda form: {}, _ran),
}


@page
async def schedule_action(view: View) -> Response:
    """A button on a schedule's page: the tool's answer (or its refusal, with its own message) beside the buttons, and
    the page's region fetched again to show the change."""
    action = ACTIONS.get(view.request.path_params["action"])
    if action is None:
        raise NotFound("no such action")
    tool, args, said = action
    try:
        result = await view.call(tool, schedule=view.request.path_params["schedule"], **args(await view.request.form()))
    except AgoraError as exc:
        if isinstance(exc, NotFound):
            raise
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    response = view.render("_result.html", ok=True, message=said(result))
    response.headers["hx-trigger"] = "schedule-changed"
    return response


ROUTES: list[BaseRoute] = [
    Route("/ui/schedules", schedules, methods=["GET"]),
    Route("/ui/schedules/{schedule}", schedule, methods=["GET"]),
    Route("/ui/schedules/{schedule}/{action}", schedule_action, methods=["POST"]),
]
