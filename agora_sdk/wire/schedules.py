"""agora.schedules.*: work the hub starts on a clock — a task, a message or a workflow run at each tick of a cron
expression, an interval or a single time — exactly once per tick, with its history.

Strings in an action's payload, content or input may name the tick: ``{{tick}}`` becomes its time (ISO 8601 UTC),
``{{schedule}}`` the schedule's name and ``{{run}}`` the run's number (1 for the first).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .common import Cursor, Input, Limit, Listing, Output, UtcDatetime
from .messaging import SendMessage
from .tasks import TaskSpec
from .workflows import RunWorkflow

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", description="Unique in the tenant.")]
ScheduleRef = Annotated[str, Field(min_length=1, max_length=128, description="The schedule's id (sched_…) or name.")]


class Overlap(StrEnum):
    """What a tick does while the run before it (a task or workflow) has not ended."""

    skip = "skip"  # the tick is recorded as skipped
    queue = "queue"  # one tick waits and runs when the run ends (later ones are skipped meanwhile)
    allow = "allow"  # it runs anyway


class Missed(StrEnum):
    """What happens to the ticks that passed while no hub was running (beyond the hub's grace)."""

    skip = "skip"  # none run; each is recorded as missed
    run_once = "run_once"  # the latest one runs, once
    catch_up = "catch_up"  # up to catch_up_max of the latest run, each with its own tick time


class ScheduleStatus(StrEnum):
    active = "active"
    paused = "paused"
    ended = "ended"  # past end_at, max_runs reached, or an 'at' that fired
    stopped = "stopped"  # its creator's key was revoked or lost the rights the action needs


class TickOutcome(StrEnum):
    fired = "fired"  # its action was created
    skipped = "skipped"  # the run before had not ended (overlap skip)
    queued = "queued"  # waiting for the run before to end (overlap queue)
    missed = "missed"  # passed while no hub ran (missed skip, or older than catch_up_max)
    refused = "refused"  # the action was refused (e.g. its workflow was deleted): the reason says why


class ScheduledTask(TaskSpec):
    deadline_seconds: float | None = Field(None, gt=0, le=366 * 86400, description="The task's deadline, in seconds after its tick.")


class ScheduledMessage(SendMessage):
    @model_validator(mode="after")
    def _no_key(self) -> ScheduledMessage:
        if self.idempotency_key is not None:
            raise ValueError("a scheduled message takes no idempotency_key: each tick sends once already")
        return self


class Action(Input):
    """What each tick starts: exactly one of a task, a message (to an agent, everyone, or a topic) or a workflow."""

    task: ScheduledTask | None = None
    message: ScheduledMessage | None = None
    workflow: RunWorkflow | None = Field(None, description="A saved workflow definition, run with this input.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        if sum(x is not None for x in (self.task, self.message, self.workflow)) != 1:
            raise ValueError("give exactly one of task, message and workflow")
        return self

    @property
    def kind(self) -> str:
        return "task" if self.task else "message" if self.message else "workflow"


class _Policies(Input):
    overlap: Overlap | None = Field(None, description="While the previous run goes on: skip (default), queue or allow.")
    missed: Missed | None = Field(None, description="Ticks passed while no hub ran: skip, run_once (default) or catch_up.")
    catch_up_max: int | None = Field(None, ge=1, le=1000, description="With catch_up: the most missed ticks run (default 10).")
    jitter_seconds: float | None = Field(None, ge=0, le=3600, description="Each tick fires up to this much later, at random (default 0).")
    start_at: UtcDatetime | None = Field(None, description="No tick before this (an interval counts from it).")
    end_at: UtcDatetime | None = Field(None, description="No tick after this: the schedule ends.")
    max_runs: int | None = Field(None, ge=1, le=2**31 - 1, description="The schedule ends after this many runs.")


class CreateSchedule(_Policies):
    positional_args: ClassVar[tuple[str, ...]] = ("name", "trigger")

    name: Name
    trigger: str = Field(
        min_length=1, max_length=200,
        description="A cron expression ('0 9 * * 1', '@daily'), an interval ('every 5m', 'every 1h30m') or one time ('at 2026-12-01T09:00').",
    )  # fmt: skip
    timezone: str = Field("UTC", min_length=1, max_length=64, description="The IANA time zone the trigger reads in.")
    action: Action
    description: str | None = Field(None, max_length=1000)
    paused: bool = Field(False, description="Create it paused.")


class UpdateSchedule(_Policies):
    """Change a schedule: what is given replaces what it had; its next tick is computed again."""

    positional_args: ClassVar[tuple[str, ...]] = ("schedule",)

    schedule: ScheduleRef
    trigger: str | None = Field(None, min_length=1, max_length=200)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    action: Action | None = None
    description: str | None = Field(None, max_length=1000)


class ScheduleRefInput(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("schedule",)

    schedule: ScheduleRef


class PauseSchedule(ScheduleRefInput):
    note: str | None = Field(None, max_length=500, description="Why, for whoever looks at it next.")


class ListSchedules(Input):
    status: ScheduleStatus | None = None
    cursor: Cursor | None = None
    limit: Limit = 50


class HistoryRequest(ScheduleRefInput):
    cursor: Cursor | None = None
    limit: Limit = 50


class Tick(Output):
    """One tick of a schedule and what it did."""

    tick_at: UtcDatetime = Field(description="The time it was due (before jitter).")
    fired_at: UtcDatetime | None = Field(description="When its action was committed (null: it did not fire).")
    lag_seconds: float | None = Field(description="fired_at - tick_at.")
    outcome: TickOutcome
    reason: str | None
    manual: bool = Field(description="Started by agora.schedules.run_now, not by the clock.")
    run_kind: str | None = Field(description="task, message or workflow.")
    run_id: str | None = Field(description="The task, message or workflow it created.")
    run_status: str | None = Field(description="The run's status now (a task's or workflow's; 'sent' for a message; null once purged).")


class Schedule(Output):
    schedule_id: str
    name: str
    trigger: str
    trigger_kind: str = Field(description="cron, interval or at.")
    trigger_words: str = Field(description="The trigger in words.")
    timezone: str
    action: Action
    description: str | None
    overlap: Overlap
    missed: Missed
    catch_up_max: int
    jitter_seconds: float
    start_at: UtcDatetime | None
    end_at: UtcDatetime | None
    max_runs: int | None
    status: ScheduleStatus
    status_reason: str | None = Field(description="Why it is paused, ended or stopped.")
    runs: int = Field(description="Ticks that fired.")
    next_runs: list[UtcDatetime] = Field(description="Its next ticks (up to 5), none unless active.")
    last_tick: Tick | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    warnings: list[str] = Field(default_factory=list, description="About the action as things stand (e.g. no agent has its capability yet).")


class ScheduleList(Listing):
    items_field: ClassVar[str] = "schedules"
    schedules: list[Schedule]
    next_cursor: str | None


class ScheduleDeleted(Output):
    schedule_id: str
    deleted: bool


class TickHistory(Listing):
    items_field: ClassVar[str] = "ticks"
    schedule_id: str
    ticks: list[Tick] = Field(description="Newest first.")
    next_cursor: str | None


class RanNow(Output):
    schedule_id: str
    tick: Tick
