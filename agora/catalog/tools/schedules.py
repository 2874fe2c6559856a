"""agora.schedules.*: work the hub starts on a clock, exactly once per tick."""

from datetime import date
from typing import Any

from agora.core.auth import Scope
from agora.core.services import schedules
from agora_sdk.wire import schedules as w

from ..tool import Tool

COMMON: dict[str, Any] = {"version": "1.0.0", "last_updated": date(2026, 11, 29)}
READ = frozenset({Scope.schedules_read.value})
WRITE = frozenset({Scope.schedules_write.value})

TOOLS = [
    Tool(
        name="agora.schedules.create",
        description=(
            "Schedule recurring work: at each tick of a cron expression ('0 9 * * 1', '@daily'), an interval ('every 5m') "
            "or one time ('at 2026-12-01T09:00'), in an IANA time zone, assign a task, send a message or run a saved "
            "workflow ({{tick}} in it becomes the tick's time), exactly once per tick. Policies: overlap (skip, queue, "
            "allow), missed ticks after downtime (skip, run_once, catch_up), jitter, start_at/end_at, max_runs. It acts as "
            "its creator, whose rights are checked at each tick."
        ),
        input_model=w.CreateSchedule,
        output_model=w.Schedule,
        handler=schedules.create,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.get",
        description="A schedule by id or name: its trigger (and in words), action, policies, status, next runs and last tick.",
        input_model=w.ScheduleRefInput,
        output_model=w.Schedule,
        handler=schedules.get,
        scopes=READ,
        read_only=True,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.list",
        description="The tenant's schedules by name, optionally of one status (active, paused, ended, stopped); cursor pagination.",
        input_model=w.ListSchedules,
        output_model=w.ScheduleList,
        handler=schedules.list_schedules,
        scopes=READ,
        read_only=True,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.update",
        description="Change a schedule's trigger, time zone, action or policies; its next tick is computed again and it acts as the caller from now.",
        input_model=w.UpdateSchedule,
        output_model=w.Schedule,
        handler=schedules.update,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.pause",
        description="Pause a schedule (with a note): no tick fires until it is resumed.",
        input_model=w.PauseSchedule,
        output_model=w.Schedule,
        handler=schedules.pause,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.resume",
        description="Resume a paused or stopped schedule: ticks from now on fire (those that passed meanwhile do not); it acts as the caller.",
        input_model=w.ScheduleRefInput,
        output_model=w.Schedule,
        handler=schedules.resume,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.delete",
        description="Delete a schedule and its history (what it started stays).",
        input_model=w.ScheduleRefInput,
        output_model=w.ScheduleDeleted,
        handler=schedules.delete,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.run_now",
        description="Fire a schedule now, besides its clock (its overlap policy applies); the tick it made.",
        input_model=w.ScheduleRefInput,
        output_model=w.RanNow,
        handler=schedules.run_now,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.schedules.history",
        description="A schedule's ticks, newest first: when each was due and fired, its lag, outcome (fired, skipped, queued, missed, refused) and what it started, with that run's status.",
        input_model=w.HistoryRequest,
        output_model=w.TickHistory,
        handler=schedules.history,
        scopes=READ,
        read_only=True,
        **COMMON,
    ),
]
