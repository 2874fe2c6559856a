"""The Agent Communication Protocol envelope (seed 001), as ``POST /agent/message`` takes it and inbox reads return it.

An envelope is a view of Agora messaging, not a second message store: ``to`` becomes one message per recipient,
``type`` the performative (or, for the deployment types, the message type), ``payload`` the content, ``task`` and
``status`` ride in the message context under ``acp``, and ``expected.timeout`` (ms) arms the request/reply timeout.
``security`` is accepted for compatibility and never stored or echoed: the caller is authenticated by its API key.
"""

from __future__ import annotations

from pydantic import Field

from .common import Input, JSONObject, JSONValue, Output, UtcDatetime
from .messaging import MessageType, Performative

# Where an envelope's own fields live in a message's context.
CONTEXT_KEY = "acp"


class EnvelopeCorrelation(Input):
    conversation_id: str | None = Field(None, max_length=128)
    reply_to: str | None = Field(None, max_length=128, description="The id of the envelope this one answers.")


class EnvelopeExpected(Input):
    type: str | None = Field(None, max_length=64)
    timeout: int | None = Field(None, ge=1, le=86_400_000, description="Milliseconds to wait for the reply.")


class EnvelopeStatus(Input):
    state: str | None = Field(None, max_length=64)
    progress: float | None = Field(None, ge=0, le=100)


class Envelope(Input):
    id: str | None = Field(None, min_length=1, max_length=100, description="Resending the same id never duplicates.")
    ts: UtcDatetime | None = None
    type: MessageType = Field(description="A performative (request, inform, …) or a deployment type (deploy, scale, …).")
    sender: str | None = Field(None, max_length=128, description="If given, the calling agent (id or name).")
    to: list[str] = Field(min_length=1, max_length=1000, description="Agent ids or names, or 'broadcast'.")
    intent: str | None = Field(None, max_length=128)
    task: str | None = Field(None, max_length=4000, description="What is asked, in words.")
    payload: JSONValue = None
    context: JSONObject = Field(default_factory=dict)
    correlation: EnvelopeCorrelation | None = None
    expected: EnvelopeExpected | None = None
    status: EnvelopeStatus | None = None
    security: JSONObject | None = Field(None, description="Accepted and ignored: authenticate with the API key.")


class EnvelopeOut(Output):
    """An envelope as the hub sends it: an inbox message, or the receipt of a posted envelope."""

    id: str
    ts: UtcDatetime
    type: str
    sender: str
    to: list[str]
    intent: str | None = None
    task: str | None = None
    payload: JSONValue = None
    context: JSONObject = Field(default_factory=dict)
    correlation: JSONObject | None = None
    expected: JSONObject | None = None
    status: JSONObject | None = None
    cursor: str | None = Field(None, description="For agora.messaging.ack (up_to).")
    delivery_count: int | None = None


class EnvelopeInbox(Output):
    envelopes: list[EnvelopeOut]
    count: int


def is_performative(kind: str) -> bool:
    return kind in Performative.__members__
