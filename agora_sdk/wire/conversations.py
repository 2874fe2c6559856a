"""agora.conversations.*: the messages and tasks of a tenant that share a ``conversation_id`` (an A2A turn's is its
contextId), listed by last activity, read as a thread, and continued with the earlier turns sent along."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .common import JSONObject, JSONValue, Cursor, Input, Limit, Listing, Output, UtcDatetime

ConversationId = Annotated[str, Field(min_length=1, max_length=128, description="The conversation_id its turns share.")]
Tenant = Annotated[
    str | None,
    Field(None, min_length=1, max_length=128, description="The tenant (id or name): the admin's to name; others have their own."),
]


class ListConversations(Input):
    agent: str | None = Field(None, min_length=1, max_length=128, description="Only those this agent (id or name) took part in.")
    tenant: Tenant = None
    cursor: Cursor | None = None
    limit: Limit = 50


class Participant(Output):
    agent_id: str
    agent_name: str | None = Field(description="Null for an agent that is gone.")


class ConversationSummary(Output):
    conversation_id: str
    tenant_id: str
    summary: str = Field(description="The first turn's words (up to 200 characters).")
    turn_count: int = Field(description="Messages and tasks in it so far.")
    participants: list[Participant]
    started_at: UtcDatetime
    last_activity_at: UtcDatetime


class ConversationList(Listing):
    items_field: ClassVar[str] = "conversations"
    conversations: list[ConversationSummary] = Field(description="The last active first.")
    next_cursor: str | None


class GetConversation(Input):
    positional_args = ("conversation_id",)

    conversation_id: ConversationId
    tenant: Tenant = None
    limit: int = Field(100, ge=1, le=500, description="The last this many turns.")


class TurnKind(StrEnum):
    message = "message"
    task = "task"


class Turn(Output):
    """A message or a task of the conversation; a task with its output so far and its outcome."""

    kind: TurnKind
    id: str = Field(description="The message's or the task's id.")
    at: UtcDatetime
    from_agent: str = Field(description="Who sent the message or assigned the task: an agent id, or 'system' or a key's label.")
    to_agent: str | None = Field(description="The recipient, or the task's assignee (the agent that took it, once taken).")
    text: str = Field(description="Its words: the content's or payload's text, else its JSON.")
    content: JSONValue = Field(description="The message's content, or the task's payload.")
    message_type: str | None = None
    task_type: str | None = None
    status: str | None = Field(None, description="A task's status.")
    output: str | None = Field(None, description="A task's output text so far (agora.task.watch streams it).")
    result: JSONValue = Field(None, description="A finished task's result.")
    error: str | None = None


class Conversation(ConversationSummary):
    turns: list[Turn] = Field(description="Oldest first.")
    has_earlier: bool = Field(description="Turns before the first one given were left out (see 'limit').")


class SendAs(StrEnum):
    message = "message"
    task = "task"


class SendToConversation(Input):
    """``agora.conversations.send``: the next turn, sent with the earlier ones (``history``, as in A2A)."""

    positional_args = ("conversation_id", "text")

    conversation_id: ConversationId
    text: str | None = Field(None, min_length=1, max_length=100_000, description="What to say (or give 'content').")
    content: JSONObject | None = Field(None, description="What to say, as JSON (or give 'text').")
    to_agent: str | None = Field(
        None, min_length=1, max_length=128, description="The agent (id or name); default: the one that spoke last, other than the caller."
    )
    send_as: SendAs | None = Field(
        None, description="A message or a task (of the type the agent was last given); default: as the agent's last turn was."
    )
    history: int = Field(20, ge=0, le=100, description="How many earlier turns go with it (in context.history, or payload.history).")
    tenant: Tenant = None

    @model_validator(mode="after")
    def _one_body(self) -> SendToConversation:
        if (self.text is None) == (self.content is None):
            raise ValueError("give either text or content (one of them)")
        return self


class HistoryEntry(Output):
    """An earlier turn as the agent receives it: ``role`` 'agent' for its own words, 'user' for the rest."""

    role: str
    sender: str
    text: str
    at: UtcDatetime


class Continued(Output):
    conversation_id: str
    sent_as: SendAs
    to_agent: str = Field(description="The agent's id.")
    message_id: str | None = None
    task_id: str | None = None
    history: list[HistoryEntry] = Field(description="The earlier turns sent with it, oldest first.")
