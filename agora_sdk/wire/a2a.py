"""A2A: an agent's A2A front (``a2a`` on registration) and ``agora.a2a.update``, how an agent answers A2A callers.

A2A payloads (messages, parts, artifacts) travel as the A2A 1.0 JSON shapes (camelCase, ``{"text": …}`` /
``{"data": …}`` / ``{"url": …}`` parts); the hub checks them against the A2A schema.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .common import Input, JSONObject, Output
from .tasks import LeaseToken, TaskId


class A2AAccess(StrEnum):
    private = "private"  # callers need an API key of the agent's tenant; the card declares bearer auth
    public = "public"  # anyone may call this agent's A2A surface (and only that), rate-limited per client


Mode = Annotated[str, Field(min_length=1, max_length=128, description="A media type, e.g. text/plain.")]


class A2ASkill(Input):
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    tags: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=32)
    examples: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=16)
    input_modes: list[Mode] = Field(default_factory=list, max_length=16)
    output_modes: list[Mode] = Field(default_factory=list, max_length=16)


class A2AFront(Input):
    """Makes the agent reachable at ``/a2a/agents/{id or name}`` with its own agent card."""

    access: A2AAccess = A2AAccess.private
    skills: list[A2ASkill] = Field(
        default_factory=list, max_length=64, description="Declared skills; empty: one skill per capability."
    )
    input_modes: list[Mode] = Field(default_factory=lambda: ["text/plain", "application/json"], max_length=16)
    output_modes: list[Mode] = Field(default_factory=lambda: ["text/plain", "application/json"], max_length=16)


class A2AState(StrEnum):
    """The A2A task states an agent may move its task to."""

    working = "working"
    input_required = "input_required"  # the turn ends; the task waits for the caller's follow-up message
    auth_required = "auth_required"
    completed = "completed"
    failed = "failed"
    rejected = "rejected"
    canceled = "canceled"


class A2AUpdate(Input):
    """One step of an agent's answer to an A2A task: a state (with an optional status message), an artifact, or a
    reply that is only a message (no task). The turn (``task_id``, an Agora task of type ``a2a.message``) must be
    claimed: its ``lease_token`` proves it. A terminal or interrupted state ends the turn."""

    positional_args: ClassVar[tuple[str, ...]] = ("task_id",)

    task_id: TaskId = Field(description="The a2a.message task (the turn) the agent claimed.")
    lease_token: LeaseToken | None = None
    state: A2AState | None = Field(None, description="The task's new state; unset: unchanged.")
    message: JSONObject | None = Field(None, description="An A2A Message (role agent): the status message, or the reply.")
    artifact: JSONObject | None = Field(None, description="An A2A Artifact to add, or to extend when append is set.")
    append: bool = Field(False, description="Add the artifact's parts to the artifact with the same artifactId.")
    last_chunk: bool = Field(False, description="This artifact chunk is its last.")
    reply: bool = Field(False, description="Answer with this message alone and no task; ends the turn.")
    metadata: JSONObject | None = Field(None, description="Merged into the A2A task's metadata.")

    @model_validator(mode="after")
    def _something(self) -> A2AUpdate:
        if self.state is None and self.artifact is None and not self.reply and self.metadata is None:
            raise ValueError("give a state, an artifact, metadata, or reply with a message")
        if self.reply and (self.message is None or self.state is not None or self.artifact is not None):
            raise ValueError("a reply is a message alone: no state, no artifact")
        return self


class A2AUpdated(Output):
    a2a_task_id: str = Field(description="The A2A task's id, as its callers know it.")
    state: str
    final: bool = Field(description="The turn ended (a terminal or interrupted state, or a reply).")
