"""agora.schedules.*: make, read, change, pause, resume, delete and trigger schedules; read a schedule's ticks.

A schedule acts as whoever last made, changed or resumed it (their key, or the person with their role in the tenant
now), checked again at every tick by the scheduler (``core/schedules/firing``). Everything a request asks is checked
before anything is saved: the trigger and time zone, the action as the caller could start it now.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection

from agora.core.authn import BOOTSTRAP_KEY_ID
from agora.core.context import CallContext
from agora.core.ids import new_id
from agora.core.schedules import firing, triggers
from agora.store.ops import agents as agent_ops
from agora.store.ops import schedules as schedule_ops
from agora.store.ops import tasks as task_ops
from agora.store.ops import workflows as workflow_ops
from agora.store.ops.pagination import decode_cursor, decode_position, page
from agora_sdk.errors import InvalidArgument, NotFound
from agora_sdk.wire import schedules as w

NEXT_RUNS = 5
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULTS = {"overlap": "skip", "missed": "run_once", "catch_up_max": 10, "jitter_seconds": 0.0}
POLICIES = ("overlap", "missed", "catch_up_max", "jitter_seconds", "start_at", "end_at", "max_runs")


def _owner(ctx: CallContext) -> dict[str, Any]:
    """Whom a schedule acts as: the caller's person, else its key (none: the hub's bootstrap key)."""
    p = ctx.principal
    if p.user_id is not None:
        return {"owner_user_id": p.user_id, "owner_key_hash": None, "created_by": p.label}
    key_hash = None if p.key_id == BOOTSTRAP_KEY_ID else p.key_hash
    return {"owner_user_id": None, "owner_key_hash": key_hash, "created_by": p.label}


def _checked(conn: Connection, ctx: CallContext, row: dict[str, Any], now: datetime) -> list[str]:
    """400 (naming the field) unless ``row`` can run: its trigger, time zone and window, and its action as the caller
    could start it now. Returns warnings (e.g. no agent has the task's capability yet)."""
    trigger = triggers.parse(row["trigger"], row["timezone"], ctx.hub.settings.schedule_min_interval_seconds)
    if row["start_at"] and row["end_at"] and row["end_at"] <= row["start_at"]:
        raise InvalidArgument("end_at is not after start_at", details={"field": "end_at"})
    if trigger.every is not None and row["jitter_seconds"] >= trigger.every.total_seconds():
        raise InvalidArgument("jitter_seconds must be shorter than the interval", details={"field": "jitter_seconds"})
    if firing.first_tick(row, now, window=False) is None:
        raise InvalidArgument(f"trigger '{row['trigger']}' has no tick after now", details={"field": "trigger"})
    if firing.first_tick(row, now) is None:
        field = "end_at" if row["end_at"] else "start_at"
        raise InvalidArgument(f"trigger '{row['trigger']}' has no tick between start_at and end_at", details={"field": field})
    action = w.Action.model_validate(row["action"])
    scope, tool = firing.NEEDS[action.kind]
    ctx.principal.require_scopes(frozenset({scope}), tool)
    tenant = ctx.principal.tenant_id
    if action.workflow is not None:
        try:
            workflow_ops.definition(conn, tenant, action.workflow.workflow_name, action.workflow.version)
        except NotFound as exc:
            raise NotFound(exc.message, details={**exc.details, "field": "action.workflow.workflow_name"}) from None
    if action.message is not None and action.message.to_agent not in (None, "broadcast"):
        try:
            agent_ops.resolve(conn, tenant, action.message.to_agent)
        except NotFound:
            raise NotFound(f"no agent '{action.message.to_agent}'", details={"field": "action.message.to_agent"}) from None
    warnings = []
    if action.task is not None and action.task.required_capabilities and not task_ops.least_loaded_agents(conn, tenant, action.task.required_capabilities):
        warnings.append(f"no active agent has {', '.join(action.task.required_capabilities)} yet: each tick's task waits for one")
    if action.task is not None and action.task.assignee is not None:
        try:
            agent_ops.resolve(conn, tenant, action.task.assignee)
        except NotFound:
            warnings.append(f"no agent '{action.task.assignee}' yet: each tick's task waits for an agent of that name")
    return warnings


def _schedule_model(row: dict[str, Any], last: dict[str, Any] | None, warnings: list[str] | None = None) -> w.Schedule:
    trigger = firing.trigger_of(row["trigger"], row["timezone"])
    upcoming: list[datetime] = []
    if row["status"] == "active" and row["next_tick_at"] is not None:
        upcoming = [row["next_tick_at"]]
        for tick in trigger.ticks(row["next_tick_at"], row["anchor_at"]):
            if len(upcoming) >= NEXT_RUNS or (row["end_at"] and tick > row["end_at"]):
                break
            upcoming.append(tick)
        if row["max_runs"] is not None:
            upcoming = upcoming[: max(0, row["max_runs"] - row["runs"])]
    return w.Schedule.model_validate({
        **row, "trigger_kind": trigger.kind, "trigger_words": trigger.describe(), "next_runs": upcoming,
        "last_tick": _tick_model(last) if last else None, "warnings": warnings or [],
    })  # fmt: skip


def _tick_model(row: dict[str, Any]) -> w.Tick:
    lag = (row["fired_at"] - row["tick_at"]).total_seconds() if row["fired_at"] else None
    return w.Tick.model_validate({**row, "lag_seconds": lag})


async def _answer(ctx: CallContext, schedule_id: str, warnings: list[str] | None = None) -> w.Schedule:
    def op(conn: Connection) -> tuple[dict[str, Any], dict[str, Any] | None]:
        row = schedule_ops.schedule(conn, None, schedule_id)
        return row, schedule_ops.last_ticks(conn, [schedule_id]).get(schedule_id)

    row, last = await ctx.store.read(op)
    return _schedule_model(row, last, warnings)


def _activate(row: dict[str, Any], now: datetime) -> None:
    """Set ``row`` going from now: its first tick from now on, or ended when there is none."""
    tick = firing.first_tick(row, now)
    done = row["max_runs"] is not None and row["runs"] >= row["max_runs"]
    if tick is None or done:
        why = f"it ran {row['max_runs']} times (max_runs)" if done else "its trigger has no tick left"
        row.update(status="ended", status_reason=f"ended: {why}", next_tick_at=None, next_fire_at=None)
    else:
        row.update(status="active", status_reason=None, next_tick_at=tick, next_fire_at=firing.fire_time(row, tick))


async def create(ctx: CallContext, req: w.CreateSchedule) -> w.Schedule:
    row = {
        "schedule_id": new_id("sched"), "tenant_id": ctx.principal.tenant_id, "name": req.name, "description": req.description,
        "trigger": " ".join(req.trigger.split()), "timezone": req.timezone,
        "action": req.action.model_dump(mode="json", exclude_none=True),
        **{k: getattr(req, k) if getattr(req, k) is not None else DEFAULTS.get(k) for k in POLICIES},
        "status": "active", "status_reason": None, "runs": 0, "next_tick_at": None, "next_fire_at": None,
        "queued_tick_at": None, "last_run_kind": None, "last_run_id": None, **_owner(ctx),
    }  # fmt: skip

    def op(conn: Connection) -> list[str]:
        now = ctx.clock.now()  # when the write runs: the first tick is computed from then, not from when it queued
        row.update(anchor_at=req.start_at or now, created_at=now, updated_at=now)
        warnings = _checked(conn, ctx, row, now)
        _activate(row, now)
        if req.paused:
            row.update(status="paused", status_reason="paused when it was made", next_fire_at=None)
        schedule_ops.insert_schedule(conn, row)
        return warnings

    warnings = await ctx.store.write(op)
    ctx.hub.schedule_wake.set()
    return _schedule_model(row, None, warnings)


async def get(ctx: CallContext, req: w.ScheduleRefInput) -> w.Schedule:
    def op(conn: Connection) -> tuple[dict[str, Any], dict[str, Any] | None]:
        row = schedule_ops.schedule(conn, ctx.principal.tenant_scope(), req.schedule)
        return row, schedule_ops.last_ticks(conn, [row["schedule_id"]]).get(row["schedule_id"])

    row, last = await ctx.store.read(op)
    return _schedule_model(row, last)


async def list_schedules(ctx: CallContext, req: w.ListSchedules) -> w.ScheduleList:
    after = decode_position(req.cursor, 2)

    def op(conn: Connection) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
        rows = schedule_ops.page(conn, ctx.principal.tenant_scope(), req.status.value if req.status else None, after, req.limit + 1)  # type: ignore[arg-type]
        return rows, schedule_ops.last_ticks(conn, [r["schedule_id"] for r in rows[: req.limit]])

    rows, last = await ctx.store.read(op)
    rows, cursor = page(rows, req.limit, lambda r: (r["name"], r["schedule_id"]))
    return w.ScheduleList(schedules=[_schedule_model(r, last.get(r["schedule_id"])) for r in rows], next_cursor=cursor)


async def _change(ctx: CallContext, ref: str, move: Any) -> w.Schedule:
    """Lock the caller's schedule, let ``move(conn, row, now)`` change it (and say its warnings), save it."""

    def op(conn: Connection) -> tuple[str, list[str]]:
        now = ctx.clock.now()  # when the write runs (see create)
        row = schedule_ops.schedule(conn, ctx.principal.tenant_scope(), ref, lock=True)
        before = dict(row)
        warnings = move(conn, row, now) or []
        changed = {k: v for k, v in row.items() if v != before[k]}
        if changed:
            schedule_ops.change(conn, row["schedule_id"], **changed, updated_at=now)
        return row["schedule_id"], warnings

    schedule_id, warnings = await ctx.store.write(op)
    ctx.hub.schedule_wake.set()
    return await _answer(ctx, schedule_id, warnings)


async def update(ctx: CallContext, req: w.UpdateSchedule) -> w.Schedule:
    given = req.model_dump(exclude_unset=True, exclude={"schedule"})

    def move(conn: Connection, row: dict[str, Any], now: datetime) -> list[str]:
        if "action" in given:
            given["action"] = req.action.model_dump(mode="json", exclude_none=True)  # type: ignore[union-attr]
        for key, value in given.items():
            row[key] = DEFAULTS.get(key) if value is None and key in DEFAULTS else value
        if "start_at" in given:
            row["anchor_at"] = row["start_at"] or row["created_at"]
        row.update(_owner(ctx))
        warnings = _checked(conn, ctx, row, now)
        if row["status"] in ("active", "ended", "stopped"):
            _activate(row, now)
        return warnings

    return await _change(ctx, req.schedule, move)


async def pause(ctx: CallContext, req: w.PauseSchedule) -> w.Schedule:
    def move(conn: Connection, row: dict[str, Any], now: datetime) -> None:
        if row["status"] == "ended":
            raise _not_now(row, "paused")
        row.update(status="paused", status_reason=f"paused: {req.note}" if req.note else None, next_fire_at=None)

    return await _change(ctx, req.schedule, move)


async def resume(ctx: CallContext, req: w.ScheduleRefInput) -> w.Schedule:
    """Ticks from now on run again (those that passed while it was paused do not); it acts as the caller from now."""

    def move(conn: Connection, row: dict[str, Any], now: datetime) -> list[str]:
        if row["status"] == "ended":
            raise _not_now(row, "resumed")
        row.update(_owner(ctx))
        warnings = _checked(conn, ctx, row, now)
        _activate(row, now)
        return warnings

    return await _change(ctx, req.schedule, move)


def _not_now(row: dict[str, Any], what: str) -> InvalidArgument:
    """The refusal to have an ended schedule ``what`` (paused, resumed, run)."""
    return InvalidArgument(
        f"schedule '{row['name']}' cannot be {what}: {row['status_reason'] or 'it has ended'}; change its trigger, window or max_runs first",
        details={"status": row["status"], "field": "schedule"},
    )  # fmt: skip


async def delete(ctx: CallContext, req: w.ScheduleRefInput) -> w.ScheduleDeleted:
    def op(conn: Connection) -> str:
        row = schedule_ops.schedule(conn, ctx.principal.tenant_scope(), req.schedule, lock=True)
        schedule_ops.remove(conn, row["schedule_id"])
        return row["schedule_id"]

    return w.ScheduleDeleted(schedule_id=await ctx.store.write(op), deleted=True)


async def run_now(ctx: CallContext, req: w.ScheduleRefInput) -> w.RanNow:
    """A tick now, besides the clock's: its overlap policy applies, and it runs as the schedule's owner."""
    def op(conn: Connection) -> tuple[dict[str, Any], firing.Round]:
        now = ctx.clock.now()
        row = schedule_ops.schedule(conn, ctx.principal.tenant_scope(), req.schedule, lock=True)
        if row["status"] == "ended":
            raise _not_now(row, "run")
        done = firing.Round()
        before = dict(row)
        firing.fire_tick(conn, ctx.hub, row, now, now, done, manual=True)
        if row["max_runs"] is not None and row["runs"] >= row["max_runs"] and row["status"] in ("active", "paused"):
            row.update(status="ended", status_reason=f"ended: it ran {row['max_runs']} times (max_runs)", next_fire_at=None, queued_tick_at=None)
        changed = {k: v for k, v in row.items() if v != before[k]}
        if changed:
            schedule_ops.change(conn, row["schedule_id"], **changed, updated_at=now)
        tick = schedule_ops.ticks(conn, row["schedule_id"], now + timedelta(microseconds=1), 1)[0]
        return tick, done

    tick, done = await ctx.store.write(op)
    await firing.after_commit(ctx.hub, done)
    return w.RanNow(schedule_id=tick["schedule_id"], tick=_tick_model(tick))


async def history(ctx: CallContext, req: w.HistoryRequest) -> w.TickHistory:
    """Newest first; the cursor is the last tick's time in microseconds since the epoch."""
    key = decode_cursor(req.cursor)
    if key is not None and not key.isdigit():
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"})
    before = EPOCH + timedelta(microseconds=int(key)) if key is not None else None

    def op(conn: Connection) -> tuple[str, list[dict[str, Any]]]:
        row = schedule_ops.schedule(conn, ctx.principal.tenant_scope(), req.schedule)
        return row["schedule_id"], schedule_ops.ticks(conn, row["schedule_id"], before, req.limit + 1)

    schedule_id, rows = await ctx.store.read(op)
    rows, cursor = page(rows, req.limit, lambda r: (r["tick_at"] - EPOCH) // timedelta(microseconds=1))
    return w.TickHistory(schedule_id=schedule_id, ticks=[_tick_model(r) for r in rows], next_cursor=cursor)
