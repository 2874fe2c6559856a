"""Messaging: durable inboxes, broadcast, topics (tools ``agora.messaging.*``)."""

from __future__ import annotations

import contextlib
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    JsonValue,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from .common import JSON_VALUE_SCHEMA, Cursor, Input, JSONObject, JSONValue, Listing, Output, UtcDatetime, acting_agent, id_pattern

MessageKind = Literal["direct", "broadcast", "topic"]

BROADCAST = "broadcast"
TOPIC_PATTERN = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"
TOPIC_FILTER_PATTERN = r"^([A-Za-z0-9_\-]+|\*)(\.([A-Za-z0-9_\-]+|\*))*$"


class PriorityLevel(IntEnum):
    """Stored as 1-4 (the v4 scale) so that urgent sorts first; spoken as words on the wire."""

    low = 1
    normal = 2
    high = 3
    urgent = 4


def _to_priority(value: Any) -> PriorityLevel:
    if isinstance(value, PriorityLevel):
        return value
    with contextlib.suppress(KeyError, ValueError):
        if isinstance(value, int) and not isinstance(value, bool):
            return PriorityLevel(value)
        if isinstance(value, str):
            return PriorityLevel(int(value)) if value.isdigit() else PriorityLevel[value]
    raise ValueError("priority must be low, normal, high or urgent (or an integer 1-4)")


Priority = Annotated[
    PriorityLevel,
    BeforeValidator(_to_priority),
    PlainSerializer(lambda p: p.name, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": [p.name for p in PriorityLevel]},
                {"type": "integer", "minimum": 1, "maximum": 4},
            ],
            "description": "low | normal | high | urgent (or 1-4, the v4 scale).",
        }
    ),
]


class Performative(StrEnum):
    """The Agent Communication Protocol's message types (seed 001)."""

    request = "request"
    inform = "inform"
    propose = "propose"
    agree = "agree"
    refuse = "refuse"
    confirm = "confirm"
    failure = "failure"
    done = "done"
    discover = "discover"
    offer = "offer"
    assign = "assign"


class Correlation(Input):
    conversation_id: str | None = Field(None, max_length=128)
    reply_to: str | None = Field(None, pattern=id_pattern("msg"), description="The message this one answers.")


class Expected(Input):
    type: str | None = Field(None, max_length=64, description="The kind of reply expected.")
    timeout_ms: int | None = Field(None, ge=1, le=86_400_000, description="Reply deadline.")


MessageType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]


class _MessageBody(Input):
    """What every message carries, wherever it goes."""

    content: Annotated[JsonValue, WithJsonSchema(JSON_VALUE_SCHEMA)] = Field(description="Text or any JSON value.")
    message_type: MessageType = "info"
    performative: Performative | None = None
    intent: str | None = Field(None, max_length=128)
    priority: Priority = PriorityLevel.normal
    correlation: Correlation | None = None
    context: JSONObject = Field(default_factory=dict)
    idempotency_key: str | None = Field(None, min_length=1, max_length=128, description="A resend with the same key returns the first receipt.")
    ttl: int | None = Field(None, ge=1, le=30 * 86_400, description="Seconds until the message expires unread.")


class SendMessage(_MessageBody):
    positional_args = ("to_agent", "content")

    to_agent: str | None = Field(None, min_length=1, max_length=128, description="Agent id, unique name, or 'broadcast'.")
    topic: str | None = Field(None, max_length=200, pattern=TOPIC_PATTERN, description="Publish to a topic instead.")
    expected: Expected | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> SendMessage:
        if (self.to_agent is None) == (self.topic is None):
            raise ValueError("give exactly one of to_agent (an agent or 'broadcast') and topic")
        return self


class MessageReceipt(Output):
    message_id: str
    status: Literal["queued", "duplicate"]
    timestamp: UtcDatetime
    kind: MessageKind
    to_agent: str | None = None
    topic: str | None = None


class SendBatch(Input):
    messages: list[SendMessage] = Field(min_length=1, max_length=1000)


class BatchReceipt(Listing):
    items_field = "receipts"
    receipts: list[MessageReceipt]
    count: int


class PublishMessage(_MessageBody):
    """``agora.messaging.publish``: a message to a topic."""

    positional_args = ("topic", "content")

    topic: str = Field(max_length=200, pattern=TOPIC_PATTERN)


class Receive(Input):
    agent: str | None = acting_agent("Whose inbox; defaults to the calling agent.")
    since: Cursor | None = Field(None, description="Only messages after this cursor (a message's 'cursor').")
    message_type: MessageType | None = None
    performative: Performative | None = None
    conversation_id: str | None = Field(None, max_length=128)
    limit: int = Field(10, ge=1, le=500)
    wait: float = Field(0, ge=0, le=60, description="Seconds to wait for a message when the inbox is empty.")
    visibility_timeout: float = Field(30, ge=1, le=43_200, description="Seconds a handed-out message stays hidden unless acked.")


class Message(Output):
    message_id: str
    cursor: str
    kind: MessageKind
    from_agent: str
    to_agent: str | None = None
    topic: str | None = None
    subscription_id: str | None = None
    message_type: str
    performative: Performative | None = None
    intent: str | None = None
    priority: Priority
    content: JSONValue
    correlation: JSONObject | None = None
    expected: JSONObject | None = None
    context: JSONObject
    timestamp: UtcDatetime
    expires_at: UtcDatetime | None = None
    delivery_count: int


class Inbox(Listing):
    items_field = "messages"
    messages: list[Message]
    count: int


class Ack(Input):
    positional_args = ("message_ids",)

    agent: str | None = acting_agent("Whose inbox; defaults to the calling agent.")
    message_ids: list[Annotated[str, Field(pattern=id_pattern("msg"))]] = Field(default_factory=list, max_length=1000)
    up_to: Cursor | None = Field(None, description="Ack every delivered message up to and including this cursor.")

    @model_validator(mode="after")
    def _something(self) -> Ack:
        if not self.message_ids and self.up_to is None:
            raise ValueError("give message_ids or up_to")
        return self


class Acked(Output):
    acked: int


class Subscribe(Input):
    agent: str | None = acting_agent("The subscriber; defaults to the calling agent.")
    topics: list[Annotated[str, Field(max_length=200, pattern=TOPIC_FILTER_PATTERN)]] = Field(
        default_factory=list, max_length=50, description="Topic patterns: 'builds.*' matches builds.ok and builds.eu.failed."
    )
    event_types: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _something(self) -> Subscribe:
        if not self.topics and not self.event_types:
            raise ValueError("give at least one topic pattern or event type")
        return self


class Subscription(Output):
    subscription_id: str
    status: Literal["active"]
    agent_id: str
    topics: list[str]
    event_types: list[str]
    created_at: UtcDatetime


class Unsubscribe(Input):
    positional_args = ("subscription_id",)

    subscription_id: str = Field(pattern=id_pattern("sub"))


class Unsubscribed(Output):
    subscription_id: str
    status: Literal["removed"]


class SearchMessages(Input):
    """``agora.messaging.search``: stored messages, newest first, one page at a time."""

    from_agent: str | None = Field(
        None, min_length=1, max_length=128,
        description="Sent by this agent (id or name), or by 'system' (a key that is no agent's).",
    )  # fmt: skip
    to_agent: str | None = Field(None, min_length=1, max_length=128, description="Sent directly to this agent (id or name).")
    topic: str | None = Field(None, max_length=200, pattern=TOPIC_PATTERN, description="Published to exactly this topic.")
    kind: MessageKind | None = Field(None, description="Only direct, broadcast or topic messages.")
    message_type: MessageType | None = None
    performative: Performative | None = None
    since: UtcDatetime | None = Field(None, description="Stored at or after this time.")
    until: UtcDatetime | None = Field(None, description="Stored before this time.")
    text: str | None = Field(
        None, min_length=1, max_length=200, description="A case-insensitive substring of the content as JSON text."
    )
    tenant: str | None = Field(
        None, min_length=1, max_length=128,
        description="Only this tenant's messages (id or name); the admin sees every tenant's otherwise.",
    )  # fmt: skip
    limit: int = Field(50, ge=1, le=500)
    cursor: Cursor | None = Field(None, description="The next_cursor of the previous page.")

    @model_validator(mode="after")
    def _a_time_range(self) -> SearchMessages:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError("since must be before until")
        return self


class StoredMessage(Output):
    """A message as the hub stored it (not a delivery: no cursor, no delivery count)."""

    message_id: str
    seq: int = Field(description="Its position in the hub's message order.")
    tenant_id: str
    kind: MessageKind
    from_agent: str = Field(description="The sender's agent id, or 'system'.")
    from_agent_name: str | None = Field(None, description="Null for 'system' or an agent that is gone.")
    to_agent: str | None = Field(None, description="The recipient's agent id (direct messages only).")
    to_agent_name: str | None = None
    topic: str | None = None
    message_type: str
    performative: Performative | None = None
    intent: str | None = None
    priority: Priority
    content: JSONValue
    correlation: JSONObject | None = Field(None, description="conversation_id and reply_to, as sent.")
    expected: JSONObject | None = None
    context: JSONObject
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None


class MessageSearch(Listing):
    items_field = "messages"

    messages: list[StoredMessage] = Field(description="Newest first.")
    has_more: bool
    next_cursor: str | None = Field(description="Pass as 'cursor' for the next (older) page; null on the last one.")
    partial: bool = Field(
        False,
        description=(
            "A filter no index serves (text, message_type, performative) makes each page read at most the 100,000 "
            "messages below its cursor: true when that window ended before 'limit' messages were found. The page may "
            "hold fewer (even none), and next_cursor searches older messages."
        ),
    )
