"""The scheduler every replica runs: it fires the ticks that have come, each exactly once.

A round is one transaction: it takes the due schedules by index (``next_fire_at``; on PostgreSQL ``FOR UPDATE SKIP
LOCKED``, so replicas share them and none waits), and for each tick inserts its row — keyed by (schedule, tick time),
so a second replica's or a retried attempt's insert is a no-op — creates its action through the same in-transaction
functions the catalog's tools use, and moves the schedule to its next tick. A hub killed at any instant so leaves
either all of that or none of it: no run lost, none doubled. Between rounds the loop sleeps until the soonest tick
(at most a second, so that schedules made on other replicas are seen), woken early when one is made here.

Ticks that passed while no hub ran (later than ``--schedule-grace``) follow the schedule's ``missed`` policy; while
the run before a tick is still going (a task or workflow), its ``overlap`` policy. The action runs as the schedule's
owner, checked at every tick: a revoked key (or a person removed from the tenant, or one whose role no longer allows
the action) stops the schedule, with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.auth import ROLE_SCOPES, Principal, PrincipalKind
from agora.core.authn import BOOTSTRAP_KEY_ID, principal_of_key
from agora.core.context import CallContext, Hub
from agora.core.events import announce
from agora.core.services import messaging as messaging_service
from agora.core.services import tasks as task_service
from agora.core.services import workflows as workflow_service
from agora.core.workflows.engine import FINISHED as WORKFLOW_FINISHED
from agora.observability import metrics
from agora.store.ops import keys as key_ops
from agora.store.ops import schedules as schedule_ops
from agora.store.ops import users as user_ops
from agora_sdk.errors import AgoraError, PermissionDenied, Unavailable
from agora_sdk.wire.admin import Role
from agora_sdk.wire.common import iso_utc
from agora_sdk.wire.messaging import SendMessage
from agora_sdk.wire.schedules import Action
from agora_sdk.wire.tasks import FINISHED as TASK_FINISHED
from agora_sdk.wire.tasks import AssignTask

from . import triggers

log = logging.getLogger("agora.schedules")

# Schedules per round (one transaction). On PostgreSQL a round holds what its actions lock until it commits — a
# recipient's inbox, the tenant's event stream — so that calls waiting on the same do not wait long.
BATCH = {"sqlite": 100, "postgresql": 20}
MAX_WAIT = 1.0  # seconds the loop sleeps at most between rounds
MAX_WALK = 10_000  # ticks walked through after a long downtime; older ones are counted missed without a row each
MISSED_RECORDED = 100  # missed ticks recorded one row each (the newest); the metric counts them all
# The scope each kind of action needs, and the tool that needs it (named when a tick is refused for it).
NEEDS = {"task": ("tasks:write", "agora.task.assign"), "message": ("messaging:send", "agora.messaging.send"), "workflow": ("workflows:write", "agora.workflow.run")}


@lru_cache(maxsize=4096)
def trigger_of(text: str, zone: str) -> triggers.Trigger:
    return triggers.parse(text, zone)


def jitter(schedule_id: str, tick: datetime, seconds: float) -> timedelta:
    """How much later than its time a tick fires: random, but the same on every replica."""
    if seconds <= 0:
        return timedelta(0)
    return timedelta(seconds=random.Random(f"{schedule_id}:{tick.isoformat()}").uniform(0, seconds))


def fire_time(sched: dict[str, Any], tick: datetime) -> datetime:
    return tick + jitter(sched["schedule_id"], tick, sched["jitter_seconds"])


def first_tick(sched: dict[str, Any], now: datetime, *, window: bool = True) -> datetime | None:
    """The schedule's first tick after ``now`` — or at ``start_at`` itself, when that is later — and, with
    ``window``, not after ``end_at``. An interval counts from its anchor: made without ``start_at``, its first tick is
    one interval after it was made."""
    trigger = trigger_of(sched["trigger"], sched["timezone"])
    start = sched["start_at"] - timedelta(microseconds=1) if window and sched["start_at"] and sched["start_at"] > now else now
    tick = trigger.after(start, sched["anchor_at"])
    return None if tick is None or (window and sched["end_at"] and tick > sched["end_at"]) else tick


@dataclass
class Round:
    """What a round did, to announce and count once it committed."""

    events: list[Event] = field(default_factory=list)
    sent: list[tuple[CallContext, list[dict[str, Any]], dict[str, dict[str, Any]]]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    fired: list[datetime] = field(default_factory=list)  # the fire times of the ticks the clock fired (for their lag)
    taken: int = 0  # schedules it took (a full batch: another round follows at once)
    soonest: datetime | None = None


# -- who a schedule acts as ------------------------------------------------------------------------------------------


def acting(conn: Connection, hub: Hub, sched: dict[str, Any], now: datetime) -> Principal:
    """The schedule's owner as a principal now, allowed its action; PermissionDenied saying why not."""
    if sched["owner_user_id"] is not None:
        user = user_ops.get(conn, sched["owner_user_id"])
        held = user_ops.memberships_of(conn, [sched["owner_user_id"]], sched["tenant_id"])[sched["owner_user_id"]]
        if user is None or user["removed_at"] is not None or not held:
            raise PermissionDenied("the person who made it is no longer a member of the tenant")
        role = held[0]["role"]
        principal = Principal(
            PrincipalKind.customer, "schedule", sched["tenant_id"], ROLE_SCOPES[Role(role)], role=role,
            user_id=user["user_id"], user_email=user["email"],
        )  # fmt: skip
    elif sched["owner_key_hash"] is not None:
        row = key_ops.lookup(conn, sched["owner_key_hash"], now)
        if row is None:
            raise PermissionDenied("the key that made it was revoked or has expired")
        principal = principal_of_key(row, sched["owner_key_hash"])
        if principal.agent_status == "terminated":
            raise PermissionDenied("the agent that made it was terminated")
    else:
        principal = Principal(PrincipalKind.admin, BOOTSTRAP_KEY_ID, sched["tenant_id"], frozenset())
    scope, tool = NEEDS[Action.model_validate(sched["action"]).kind]
    principal.require_scopes(frozenset({scope}), tool)
    return principal


# -- an action ---------------------------------------------------------------------------------------------------------


def _filled(value: Any, words: dict[str, str]) -> Any:
    """``value`` with {{tick}}, {{schedule}} and {{run}} in its strings replaced."""
    if isinstance(value, str):
        for name, word in words.items():
            value = value.replace("{{" + name + "}}", word)
        return value
    if isinstance(value, dict):
        return {k: _filled(v, words) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(v, words) for v in value]
    return value


def start_run(conn: Connection, ctx: CallContext, sched: dict[str, Any], tick: datetime, run: int, now: datetime, done: Round) -> tuple[str, str]:
    """Create the schedule's action for ``tick`` as ``ctx.principal``, in the caller's transaction: (kind, id)."""
    action = Action.model_validate(sched["action"])
    words = {"tick": iso_utc(tick), "schedule": sched["name"], "run": str(run)}
    p = ctx.principal
    if action.task is not None:
        spec = action.task.model_dump(exclude={"deadline_seconds"})
        deadline = tick + timedelta(seconds=action.task.deadline_seconds) if action.task.deadline_seconds else None
        req = AssignTask(**{**spec, "payload": _filled(spec["payload"], words), "deadline": deadline})
        task, events, _warnings = task_service.assign_in(conn, p, req, now)
        done.events += events
        return "task", task["task_id"]
    if action.message is not None:
        body = action.message.model_dump(exclude_unset=True)
        msg = SendMessage.model_validate({**body, "content": _filled(action.message.content, words)})
        rows, receipts = messaging_service.send_in(conn, ctx, [msg], [messaging_service.draft(ctx, msg, now)], now)
        done.sent.append((ctx, rows, receipts))
        return "message", rows[0]["message_id"]
    assert action.workflow is not None
    req = action.workflow.model_copy(update={"input": _filled(action.workflow.input, words)})
    source = workflow_service.saved_source(p, req)
    workflow, _warnings, events = workflow_service.start_in(conn, p, req.workflow_name, source, req.input, [], now)
    done.events += events
    return "workflow", workflow["workflow_id"]


ENDED = {"task": frozenset(TASK_FINISHED), "workflow": frozenset(WORKFLOW_FINISHED)}  # statuses in which a run has ended


def still_running(conn: Connection, sched: dict[str, Any]) -> bool:
    """Whether the schedule's last run (a task or workflow) has not ended."""
    status = schedule_ops.run_status(conn, sched["last_run_kind"], sched["last_run_id"])
    if status is None:
        return False
    return status not in ENDED[sched["last_run_kind"]]


# -- a tick --------------------------------------------------------------------------------------------------------------


def _tick_row(sched: dict[str, Any], tick: datetime, outcome: str, now: datetime, manual: bool, reason: str | None = None) -> dict[str, Any]:
    return {
        "schedule_id": sched["schedule_id"], "tick_at": tick, "tenant_id": sched["tenant_id"], "outcome": outcome,
        "reason": reason, "manual": manual, "fired_at": None, "recorded_at": now, "run_kind": None, "run_id": None,
    }  # fmt: skip


def fire_tick(conn: Connection, hub: Hub, sched: dict[str, Any], tick: datetime, now: datetime, done: Round, *, manual: bool = False, queued: bool = False) -> dict[str, Any]:
    """One tick of ``sched`` (a row of it, changed in place): its row, and its action unless its overlap policy or
    its owner's rights say otherwise. ``queued``: the tick waited (overlap queue) and its row is there already."""
    if sched["overlap"] != "allow" and sched["last_run_kind"] in ("task", "workflow") and still_running(conn, sched):
        if queued:
            return sched  # it waits on
        why = f"the run before ({sched['last_run_id']}) has not ended"
        if sched["overlap"] == "queue" and sched["queued_tick_at"] is None and not manual:
            if schedule_ops.record_tick(conn, _tick_row(sched, tick, "queued", now, manual, why)):
                sched["queued_tick_at"] = tick
                done.outcomes["queued"] += 1
            return sched
        if sched["queued_tick_at"] is not None:
            why += "; a tick is queued already"
        if schedule_ops.record_tick(conn, _tick_row(sched, tick, "skipped", now, manual, why)):
            done.outcomes["skipped"] += 1
        return sched
    if queued:
        sched["queued_tick_at"] = None

    def record(outcome: str, reason: str | None = None, **run: Any) -> bool:
        """The tick's row (a queued tick's, updated); False when another replica or an earlier attempt has it."""
        if queued:
            schedule_ops.settle_tick(conn, sched["schedule_id"], tick, outcome=outcome, reason=reason, **run)
            return True
        return schedule_ops.record_tick(conn, {**_tick_row(sched, tick, outcome, now, manual, reason), **run})

    try:
        principal = acting(conn, hub, sched, now)
    except PermissionDenied as exc:
        if record("refused", exc.message):
            sched.update(status="stopped", status_reason=f"stopped: {exc.message}", next_fire_at=None, queued_tick_at=None)
            done.outcomes["refused"] += 1
            log.warning("schedule stopped", extra={"schedule": sched["schedule_id"], "reason": exc.message})
        return sched
    ctx = CallContext(hub, principal, f"schedule:{sched['schedule_id']}", "agora.schedules.tick")
    told = len(done.events), len(done.sent)
    try:
        with conn.begin_nested() as attempt:
            kind, run_id = start_run(conn, ctx, sched, tick, sched["runs"] + 1, now, done)
            if not record("fired", fired_at=now, run_kind=kind, run_id=run_id):
                attempt.rollback()  # fired already (another replica, or an attempt this one retried): undone
                del done.events[told[0] :], done.sent[told[1] :]
                return sched
    except AgoraError as exc:  # e.g. its workflow was deleted, its recipient is gone: the schedule goes on
        if record("refused", exc.message):
            done.outcomes["refused"] += 1
        return sched
    sched.update(runs=sched["runs"] + 1, last_run_kind=kind, last_run_id=run_id)
    done.outcomes["fired"] += 1
    if not manual:
        done.fired.append(fire_time(sched, tick))
    return sched


def _due_ticks(sched: dict[str, Any], now: datetime) -> tuple[list[datetime], int, datetime | None]:
    """The ticks from the schedule's next one up to ``now`` (the newest ``MAX_WALK``), how many older were passed
    over without being walked, and the first tick after ``now`` (None: no more)."""
    trigger = trigger_of(sched["trigger"], sched["timezone"])
    ticks, passed_over, after = [sched["next_tick_at"]], 0, None
    for tick in trigger.ticks(sched["next_tick_at"], sched["anchor_at"]):
        if tick > now:
            after = tick
            break
        if len(ticks) >= MAX_WALK:  # a long downtime: jump to now, counting what is passed over
            passed_over = len(ticks)
            ticks = []
            after = trigger.after(now, sched["anchor_at"])
            break
        ticks.append(tick)
    if sched["end_at"] is not None:
        ticks = [t for t in ticks if t <= sched["end_at"]]
        after = after if after is not None and after <= sched["end_at"] else None
    return ticks, passed_over, after


def fire_due(conn: Connection, hub: Hub, sched: dict[str, Any], now: datetime, done: Round) -> None:
    """A due schedule: its ticks up to now — the missed ones by its ``missed`` policy — then its next tick."""
    ticks, passed_over, after = _due_ticks(sched, now)
    grace = timedelta(seconds=hub.settings.schedule_grace_seconds)
    late = [t for t in ticks if now - fire_time(sched, t) > grace]
    timely = ticks[len(late) :]
    keep = {"skip": 0, "run_once": 0 if timely else 1, "catch_up": sched["catch_up_max"]}[sched["missed"]] if late else 0
    missed = late[: len(late) - keep]
    for tick in missed[-MISSED_RECORDED:]:
        schedule_ops.record_tick(conn, _tick_row(sched, tick, "missed", now, False, "passed while no hub was running"))
    if missed or passed_over:
        done.outcomes["missed"] += len(missed) + passed_over
    for tick in late[len(missed) :] + timely:
        if sched["status"] != "active" or (sched["max_runs"] is not None and sched["runs"] >= sched["max_runs"]):
            break
        fire_tick(conn, hub, sched, tick, now, done)
    changes = {k: sched[k] for k in ("status", "status_reason", "runs", "last_run_kind", "last_run_id", "queued_tick_at")}
    if sched["status"] == "active":
        if sched["max_runs"] is not None and sched["runs"] >= sched["max_runs"]:
            changes.update(status="ended", status_reason=f"ended: it ran {sched['max_runs']} times (max_runs)")
        elif after is None:
            changes.update(status="ended", status_reason="ended: its trigger has no tick left")
    if changes["status"] == "active":
        assert after is not None
        changes.update(next_tick_at=after, next_fire_at=fire_time(sched, after))
    else:
        changes.update(next_fire_at=None, queued_tick_at=None)
    schedule_ops.change(conn, sched["schedule_id"], **changes, updated_at=now)


def _round(conn: Connection, hub: Hub, now: datetime, batch: int) -> Round:
    done = Round()
    due = schedule_ops.due(conn, now, batch)
    for sched in due:
        fire_due(conn, hub, sched, now, done)
    waiting = schedule_ops.queued(conn, batch, ENDED)
    for sched in waiting:
        before = dict(sched)
        fire_tick(conn, hub, sched, sched["queued_tick_at"], now, done, queued=True)
        if sched != before:
            schedule_ops.change(conn, sched["schedule_id"], **{k: sched[k] for k in ("status", "status_reason", "runs", "last_run_kind", "last_run_id", "queued_tick_at", "next_fire_at")}, updated_at=now)
    done.taken = max(len(due), len(waiting))
    done.soonest = schedule_ops.soonest(conn)
    return done


def _pending(conn: Connection, now: datetime) -> tuple[bool, datetime | None]:
    """Whether a round has work now (a tick due or one queued), and the soonest tick."""
    soonest = schedule_ops.soonest(conn)
    return (soonest is not None and soonest <= now) or schedule_ops.any_queued(conn, ENDED), soonest


async def after_commit(hub: Hub, done: Round) -> None:
    """What a committed round (or a run_now) tells: events, messages' readers, metrics."""
    committed = hub.clock.now()
    for fired in done.fired:
        metrics.SCHEDULE_LAG.observe((committed - fired).total_seconds())
    await announce(hub, done.events)
    for ctx, rows, receipts in done.sent:
        await messaging_service.announce_sent(ctx, rows, receipts)
    for outcome, count in done.outcomes.items():
        metrics.count_ticks(outcome, count)


async def fire_round(hub: Hub) -> datetime | None:
    """Rounds until nothing is due; the soonest tick left."""
    batch = BATCH[hub.store.dialect]
    while True:
        if hub.halt.halted:  # an emergency halt: no new work; ticks passed meanwhile follow their 'missed' policy
            return None
        now = hub.clock.now()
        work, soonest = await hub.store.read(_pending, now)
        if not work:
            return soonest
        done = await hub.store.write(_round, hub, now, batch)
        await after_commit(hub, done)
        if done.taken < batch:
            return done.soonest


async def run(hub: Hub) -> None:
    """The scheduler loop (every replica runs one)."""
    away = False
    while True:
        soonest = None
        hub.schedule_wake.clear()  # a schedule made from here on wakes the wait below
        try:
            soonest = await fire_round(hub)
            away = False
        except Unavailable as exc:  # the database is away: the next round tries again
            if not away:
                log.warning("schedules wait for the database", extra={"error": exc.message})
            away = True
        except Exception:  # noqa: BLE001 - a failed round is retried at the next one
            log.exception("schedule round failed")
        wait = MAX_WAIT if soonest is None else min(MAX_WAIT, max(0.0, (soonest - hub.clock.now()).total_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(hub.schedule_wake.wait(), wait)
