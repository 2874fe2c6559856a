"""Workflows (``agora.workflow.*``): durable multi-agent DAGs whose steps run as Agora tasks."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .common import INT32_MAX, Cursor, Input, JSONObject, JSONValue, Listing, Output, UtcDatetime, id_pattern
from .tasks import Capability

StepName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
WORKFLOW_ID = id_pattern("wf")


class StepKind(StrEnum):
    task = "task"  # an Agora task for the step's agent (or any agent with its capabilities)
    approval = "approval"  # waits for agora.workflow.signal (approve or reject, with data)
    for_each = "for_each"  # one task per item of the list ``items`` names, joined


class FailurePolicy(StrEnum):
    fail_fast = "fail_fast"  # a failed step cancels the running ones and fails the workflow
    continue_ = "continue"  # steps that do not depend on the failure still run


class Retry(Input):
    attempts: int = Field(3, ge=1, le=100, description="Times the step's task is tried before the step fails.")
    backoff_seconds: float = Field(1.0, gt=0, le=300, description="Wait before the first retry, doubled each time (jittered).")


class Step(Input):
    name: StepName
    agent: str | None = Field(None, max_length=128, description="Agent id or name; or give required_capabilities.")
    required_capabilities: list[Capability] = Field(default_factory=list, max_length=20)
    task_type: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Default: the step's name.")
    input: JSONValue = Field(None, description='Literal JSON; "${input.x}" and "${steps.<name>.result.y}" are replaced.')
    depends_on: list[StepName] | None = Field(None, max_length=50, description="Step names; unset: the step before.")
    when: str | None = Field(None, max_length=1000, description='A condition, e.g. steps.check.result.ok == true; false: skipped.')
    retry: Retry = Field(default_factory=Retry)
    timeout: float | None = Field(None, gt=0, le=30 * 86_400, description="Seconds the step's task may take in all.")
    kind: StepKind = StepKind.task
    items: str | None = Field(None, max_length=300, description='for_each: a reference to a list, e.g. "${steps.split.result.files}".')

    @model_validator(mode="after")
    def _shape(self) -> Step:
        if self.kind is StepKind.approval:
            return self
        if self.kind is StepKind.for_each and not self.items:
            raise ValueError("a for_each step names the list it fans out over in 'items'")
        if self.agent is not None and self.required_capabilities:
            raise ValueError("give an agent or required_capabilities, not both")
        return self


class CreateWorkflow(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("workflow_name", "steps")

    workflow_name: str = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(min_length=1, max_length=200)
    assigned_agents: list[str] = Field(default_factory=list, max_length=200, description="Seed 000: the agents involved (informative).")
    metadata: JSONObject = Field(default_factory=dict)
    input: JSONObject = Field(default_factory=dict, description="What steps read as ${input.…}.")
    failure_policy: FailurePolicy = FailurePolicy.fail_fast


class DefineWorkflow(Input):
    """A workflow saved under a name to be run many times; defining a name again makes its next version."""

    positional_args: ClassVar[tuple[str, ...]] = ("workflow_name", "steps")

    workflow_name: str = Field(min_length=1, max_length=200)
    steps: list[Step] = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    failure_policy: FailurePolicy = FailurePolicy.fail_fast


class WorkflowDefinition(Output):
    workflow_name: str
    version: int
    total_steps: int
    created_at: UtcDatetime
    warnings: list[str] = Field(default_factory=list)


class RunWorkflow(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("workflow_name",)

    workflow_name: str = Field(min_length=1, max_length=200)
    version: int | None = Field(None, ge=1, le=INT32_MAX, description="Unset: the latest version.")
    input: JSONObject = Field(default_factory=dict, description="What steps read as ${input.…}.")
    metadata: JSONObject = Field(default_factory=dict)


class WorkflowCreated(Output):
    workflow_id: str
    status: str
    created_at: UtcDatetime
    warnings: list[str] = Field(default_factory=list)


class WorkflowRef(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("workflow_id",)

    workflow_id: Annotated[str, Field(pattern=WORKFLOW_ID)]


class ModifyWorkflow(WorkflowRef):
    """Change a running workflow's steps that have not started; finished and running steps are never touched."""

    add: list[Step] = Field(default_factory=list, max_length=100, description="New steps (depends_on unset: after the last step).")
    remove: list[StepName] = Field(default_factory=list, max_length=100, description="Pending steps to drop; steps after one depend on its dependencies instead.")
    reassign: dict[str, str] = Field(default_factory=dict, description="Pending step name → the agent (id or name) to do it.")
    depends_on: dict[str, list[StepName]] = Field(default_factory=dict, description="Pending step name → its new dependencies (reorders the DAG).")

    @model_validator(mode="after")
    def _something(self) -> ModifyWorkflow:
        if not (self.add or self.remove or self.reassign or self.depends_on):
            raise ValueError("give steps to add, remove, reassign or rewire (depends_on)")
        return self


class StatusRequest(WorkflowRef):
    mermaid: bool = Field(False, description="Also return the DAG as a Mermaid flowchart, each step styled by its state.")


class CancelWorkflow(WorkflowRef):
    reason: str | None = Field(None, max_length=1000)


class Decision(StrEnum):
    approve = "approve"
    reject = "reject"


class Signal(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("workflow_id", "step", "decision")

    workflow_id: Annotated[str, Field(pattern=WORKFLOW_ID)]
    step: StepName
    decision: Decision
    data: JSONValue = Field(None, description="The approval step's result (what later steps read).")
    note: str | None = Field(None, max_length=1000, description="Why: kept in the step's event, and in its error when rejected.")


class StepStatus(Output):
    name: str
    kind: StepKind
    state: str = Field(description="pending, running, waiting, completed, failed, skipped or cancelled.")
    depends_on: list[str]
    agent: str | None = None
    task_ids: list[str] = Field(default_factory=list)
    input: JSONValue = Field(None, description="What the step is given: its input with ${…} replaced once it has started; as written before.")
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    result: JSONValue = None
    error: str | None = None


class WorkflowStatus(Output):
    workflow_id: str
    workflow_name: str
    status: str = Field(description="running, completed, failed or cancelled.")
    current_step: int | None = Field(description="Index of the first step still running or waiting.")
    total_steps: int
    progress: float = Field(description="Finished steps, in percent.")
    steps: list[StepStatus]
    failure_policy: FailurePolicy
    input: JSONObject
    metadata: JSONObject
    created_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    mermaid: str | None = Field(None, description="The DAG as a Mermaid flowchart (when asked for).")


class ListWorkflows(Input):
    status: str | None = Field(None, pattern=r"^(running|completed|failed|cancelled)$")
    limit: int = Field(50, ge=1, le=500)
    cursor: Cursor | None = None


class WorkflowSummary(Output):
    workflow_id: str
    workflow_name: str
    status: str
    total_steps: int
    progress: float
    created_at: UtcDatetime
    finished_at: UtcDatetime | None = None


class WorkflowList(Listing):
    items_field: ClassVar[str] = "workflows"

    workflows: list[WorkflowSummary]
    count: int
    next_cursor: str | None = None
