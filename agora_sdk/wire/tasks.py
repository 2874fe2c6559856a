"""agora.task.*: assign, claim with a lease, heartbeat, update, and the queue's views."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from .common import INT32_MAX, Cursor, Input, JSONObject, JSONValue, Listing, Output, UtcDatetime, acting_agent, id_pattern
from .messaging import Priority, PriorityLevel

TASK_ID = id_pattern("task")
TaskId = Annotated[str, Field(pattern=TASK_ID)]
Capability = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")]
LeaseToken = Annotated[str, Field(pattern=r"^lease_[0-9a-f]{32}$", description="The lease token the claim returned.")]


class TaskStatus(StrEnum):
    pending = "pending"
    in_progress = "in_progress"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"
    dead_letter = "dead_letter"
    # Seed 000 spells them in capitals (TaskStatus.IN_PROGRESS): aliases of the same members.
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DEAD_LETTER = "dead_letter"


FINISHED = frozenset({TaskStatus.completed, TaskStatus.failed, TaskStatus.cancelled, TaskStatus.dead_letter})


class TaskSpec(Input):
    """What a task is and who may take it: an assign's fields, and a schedule's task (``schedules.ScheduledTask``)."""

    positional_args = ("task_type", "payload")

    task_type: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    assignee: str | None = Field(None, max_length=128, description="Agent id or name; or give required_capabilities.")
    required_capabilities: list[Capability] = Field(
        default_factory=list, max_length=20, description="Any active agent with all of these may claim it."
    )
    payload: JSONObject = Field(default_factory=dict)
    priority: Priority = PriorityLevel.normal
    max_attempts: int = Field(3, ge=1, le=100, description="Claims before the task goes to the dead letter.")
    retry_backoff_seconds: float | None = Field(
        None, gt=0, le=300, description="Wait before the first retry (doubled each time, jittered, at most 300 s); default 1 s."
    )

    @model_validator(mode="after")
    def _one_target(self) -> TaskSpec:
        _check_one_target(self.assignee, self.required_capabilities)
        return self


class AssignTask(TaskSpec):
    deadline: UtcDatetime | None = Field(None, description="After this the task fails as 'expired'.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=128, description="The same key returns the same task.")
    depends_on: list[TaskId] = Field(default_factory=list, max_length=100, description="Tasks that must complete first.")
    run_if_dependency_fails: bool = Field(False, description="Run once the dependencies finish, whatever their outcome.")
    require_available: bool = Field(
        False, description="Refuse (409) unless an active agent can take it now, instead of queueing with a warning."
    )
    workflow_id: str | None = Field(None, max_length=64)
    conversation_id: str | None = Field(
        None, min_length=1, max_length=128, description="The conversation it is a turn of (agora.conversations.get shows it there)."
    )


def _check_one_target(assignee: str | None, required_capabilities: list[str]) -> None:
    """A task goes to one agent or to any agent with the capabilities: one of them, not both."""
    if (assignee is None) == (not required_capabilities):
        raise ValueError("give either an assignee or required_capabilities (one of them, not both)")


class Assigned(Output):
    task_id: str
    status: TaskStatus
    created: bool = Field(description="False when an earlier assign with the same idempotency_key is returned.")
    estimated_completion: UtcDatetime | None
    warnings: list[str] = Field(default_factory=list)


class AssignTasks(Input):
    """``agora.task.assign_batch``: several tasks queued in one call and one transaction."""

    tasks: list[AssignTask] = Field(min_length=1, max_length=100)


class AssignedBatch(Listing):
    items_field = "results"

    results: list[Assigned] = Field(description="One per task, in the order given.")
    created: int = Field(description="How many are new (the rest were returned by their idempotency_key).")


TaskTypes = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(default_factory=list, max_length=20, description="Only these task types (default: any)."),
]
LeaseSeconds = Annotated[float, Field(ge=1, le=3600, description="How long the lease lasts without a heartbeat.")]
MaxTasks = Annotated[int, Field(ge=1, le=100, description="At most this many tasks; fewer when fewer are eligible.")]


class ClaimTask(Input):
    agent: str | None = acting_agent("The claiming agent; defaults to the calling agent.")
    task_types: TaskTypes
    wait: float = Field(0, ge=0, le=60, description="Seconds to long-poll when nothing is eligible.")
    lease_seconds: LeaseSeconds = 30


class Lease(Output):
    token: str
    fencing_token: int = Field(description="Grows with every claim of the task: stale writers can be told apart.")
    expires_at: UtcDatetime


class Task(Output):
    task_id: str
    tenant_id: str
    task_type: str
    status: TaskStatus
    assignee: str | None
    required_capabilities: list[str]
    preferred_agent: str | None
    claimed_by: str | None
    payload: JSONObject
    result: JSONValue = None
    progress: int
    notes: str | None
    priority: Priority
    deadline: UtcDatetime | None
    max_attempts: int
    attempts: int
    retry_backoff_seconds: float | None
    depends_on: list[str]
    run_if_dependency_fails: bool
    workflow_id: str | None
    conversation_id: str | None = None
    last_error: str | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    available_at: UtcDatetime


class Claimed(Output):
    task: Task | None = Field(description="Null when nothing was eligible within 'wait'.")
    lease: Lease | None


class ClaimTasks(ClaimTask):
    """``agora.task.claim_batch``: up to ``max_tasks`` eligible tasks at once, each under its own lease."""

    max_tasks: MaxTasks = 10


class Claim(Output):
    task: Task
    lease: Lease


class ClaimedBatch(Listing):
    items_field = "claims"

    claims: list[Claim] = Field(description="Empty when nothing was eligible within 'wait'.")
    next_available_at: UtcDatetime | None = Field(
        None, description="With no claims: when a task now backing off between attempts becomes eligible, if one is."
    )


class TaskHeartbeat(Input):
    agent: str | None = acting_agent("The lease holder; defaults to the calling agent.")
    task_id: TaskId
    lease_token: LeaseToken
    progress: int | None = Field(None, ge=0, le=100)
    notes: str | None = Field(None, max_length=4000)
    lease_seconds: float = Field(30, ge=1, le=3600)


class UpdateTask(Input):
    positional_args = ("task_id",)

    task_id: TaskId
    status: TaskStatus | None = None
    lease_token: LeaseToken | None = Field(None, description="Needed to complete or fail a claimed task.")
    progress: int | None = Field(None, ge=0, le=100)
    notes: str | None = Field(None, max_length=4000)
    result: JSONValue = None
    retry: bool = Field(False, description="With status 'failed': back to the queue if attempts remain.")

    @model_validator(mode="after")
    def _known_transition(self) -> UpdateTask:
        if self.status is TaskStatus.dead_letter:
            raise ValueError("dead_letter is reached by running out of attempts, not set")
        return self


class ClaimNext(Input):
    """Tasks the calling agent takes in the same transaction as its updates (no waiting: what is eligible now)."""

    max_tasks: MaxTasks = 1
    task_types: TaskTypes
    lease_seconds: LeaseSeconds = 30


class UpdateTasks(Input):
    """``agora.task.update_batch``: several updates in one call; each succeeds or fails on its own."""

    updates: list[UpdateTask] = Field(min_length=1, max_length=100)
    claim_next: ClaimNext | None = Field(
        None, description="Then claim tasks in the same call, as agora.task.claim_batch would (the calling agent only)."
    )
    brief: bool = Field(False, description="Leave the tasks out of the results: only which updates failed, and why.")


class UpdateError(Output):
    code: str = Field(description="The error code the update alone would have answered with (e.g. 'conflict').")
    message: str
    details: JSONObject = Field(default_factory=dict)


class UpdateResult(Output):
    task_id: str
    task: Task | None = Field(None, description="The task after the update; null when it failed (or when brief was asked).")
    error: UpdateError | None = Field(None, description="Why this update changed nothing; null when it succeeded.")


class UpdatedBatch(Listing):
    items_field = "results"

    results: list[UpdateResult] = Field(description="One per update, in the order given.")
    updated: int
    failed: int
    claims: list[Claim] = Field(default_factory=list, description="The tasks claim_next took (empty without it).")


class TaskRef(Input):
    positional_args = ("task_id",)

    task_id: TaskId


class CancelTask(TaskRef):
    reason: str | None = Field(None, max_length=1000)


class TaskSort(StrEnum):
    priority = "priority"
    deadline = "deadline"
    created = "created"


class ListTasks(Input):
    agent: str | None = acting_agent("Assigned to or claimed by this agent (id or name).")
    status: TaskStatus | None = None
    task_type: str | None = Field(None, max_length=64)
    workflow_id: str | None = Field(None, max_length=64)
    tenant: str | None = Field(
        None, min_length=1, max_length=128, description="Only this tenant's tasks (id or name); the admin sees every tenant's otherwise."
    )
    sort: TaskSort = TaskSort.created
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0, le=1_000_000)
    cursor: Cursor | None = None


class TaskList(Listing):
    items_field = "tasks"

    tasks: list[Task]
    total: int
    has_more: bool
    next_cursor: str | None


class Transition(Output):
    at: UtcDatetime
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


class TaskHistory(Listing):
    items_field = "transitions"

    task_id: str
    transitions: list[Transition]


class TaskStats(Output):
    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    oldest_pending_seconds: float | None
    in_flight_leases: int
    dead_letter: int


class StatsRequest(Input):
    task_type: str | None = Field(None, max_length=64)


class Requeue(TaskRef):
    reset_attempts: bool = Field(True, description="Start counting attempts again.")


class Reassign(TaskRef):
    """``agora.task.reassign``: a new target for a task that is not completed or cancelled."""

    assignee: str | None = Field(
        None, min_length=1, max_length=128, description="The agent (id or name, of the task's tenant) that takes it over."
    )
    required_capabilities: list[Capability] = Field(
        default_factory=list, max_length=20, description="Or: any active agent with all of these may claim it."
    )
    reason: str | None = Field(None, max_length=1000, description="Why, for the task's history.")

    @model_validator(mode="after")
    def _one_target(self) -> Reassign:
        _check_one_target(self.assignee, self.required_capabilities)
        return self


class SetPriority(TaskRef):
    positional_args = ("task_id", "priority")

    priority: Priority


class RequeueDeadLetters(Input):
    """``agora.task.requeue_dead_letter``: the dead letter back in the queue, oldest tasks first."""

    task_type: str | None = Field(None, max_length=64, description="Only tasks of this type.")
    tenant: str | None = Field(
        None, min_length=1, max_length=128,
        description="Only this tenant's tasks (id or name); the admin's calls reach every tenant's otherwise.",
    )  # fmt: skip
    limit: int = Field(100, ge=1, le=1000, description="At most this many tasks in this call.")


class RequeuedDeadLetters(Listing):
    items_field = "task_ids"

    task_ids: list[str] = Field(description="The tasks put back in the queue, oldest first.")
    requeued: int
    has_more: bool = Field(description="More dead-lettered tasks match: call again for the next ones.")


class OutputChunk(Input):
    """One piece of a task's output: text (say an LLM's next tokens) or any JSON value."""

    text: str | None = Field(None, max_length=65_536)
    data: JSONValue = Field(None, description="A structured chunk (give text or data, not both).")

    @model_validator(mode="after")
    def _one(self) -> OutputChunk:
        if (self.text is None) == ("data" not in self.model_fields_set):
            raise ValueError("a chunk has text or data (one of them)")
        return self


class EmitOutput(Input):
    """``agora.task.emit``: output of a task while it runs, from the holder of its lease."""

    positional_args = ("task_id", "lease_token", "chunks")

    agent: str | None = acting_agent("The lease holder; defaults to the calling agent.")
    task_id: TaskId
    lease_token: LeaseToken
    chunks: list[OutputChunk] = Field(min_length=1, max_length=500)


class Emitted(Output):
    task_id: str
    first_seq: int | None = Field(description="The first chunk's number (null: none was kept, the task's bound was reached).")
    last_seq: int | None
    overflowed: int = Field(description="Chunks of this call past the task's bound: counted in its overflow chunk, not kept.")


class WatchOutput(Input):
    """``agora.task.watch``: a task's output after a cursor, waiting up to ``wait`` seconds for more."""

    positional_args = ("task_id",)

    task_id: TaskId
    after: int = Field(0, ge=0, le=INT32_MAX, description="The last chunk number the caller has (its next_after); 0: from the start.")
    limit: int = Field(500, ge=1, le=1000)
    wait: float = Field(0, ge=0, le=60, description="Seconds to wait when there is nothing new and the task has not ended.")
    last: int | None = Field(
        None, ge=1, le=1000, description="Instead of those after a cursor, the task's last this many chunks, at once (its output's tail)."
    )

    @model_validator(mode="after")
    def _a_cursor_or_the_tail(self) -> WatchOutput:
        if self.last is not None and (self.after or self.wait):
            raise ValueError("give 'last' alone, or 'after' and 'wait': not both")
        return self


class Chunk(Output):
    seq: int
    kind: str = Field(description="text, data, or overflow (what the task's bound did not keep: data.chunks, data.bytes).")
    text: str | None
    data: JSONValue = None
    at: UtcDatetime


class TaskOutput(Listing):
    items_field = "chunks"

    task_id: str
    status: TaskStatus
    chunks: list[Chunk]
    next_after: int = Field(description="Give it as 'after' to read on from here.")
    ended: bool = Field(description="The task has finished and every chunk it emitted is in this or an earlier answer.")
