"""The Agent Bus envelope (seed 004), as ``POST /bus/publish`` takes it: agents written for that bus join Agora.

Each of the bus's five message types maps onto an Agora tool: ``task_assignment`` → ``agora.task.assign``,
``task_completion`` → ``agora.task.update`` (completed, or failed), ``state_update`` → ``agora.agents.heartbeat``,
``error_report`` → ``agora.task.update`` (failed) when it names a task, else a heartbeat with status ``error``,
``assistance_request`` → ``agora.messaging.send`` (a request). The envelope's ``message_id`` is the idempotency key.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .common import Input, JSONObject, JSONValue, Output, UtcDatetime


class BusMessageType(StrEnum):
    task_assignment = "task_assignment"
    task_completion = "task_completion"
    state_update = "state_update"
    error_report = "error_report"
    assistance_request = "assistance_request"


class BusPriority(StrEnum):
    high = "high"
    medium = "medium"
    low = "low"


class BusEnvelope(Input):
    message_id: str = Field(min_length=1, max_length=100, description="Resending the same id never duplicates.")
    timestamp: UtcDatetime | None = None
    sender: str | None = Field(None, max_length=128, description="If given, the calling agent (id or name).")
    target: str | None = Field(None, max_length=128, description="The agent (id or name) it is for, when there is one.")
    type: BusMessageType
    priority: BusPriority = BusPriority.medium
    content: JSONObject = Field(default_factory=dict)
    correlation_id: str | None = Field(None, max_length=128)


class BusAccepted(Output):
    message_id: str
    status: str = "accepted"
    tool: str = Field(description="The Agora tool the envelope was mapped to.")
    result: JSONValue = Field(description="That tool's result (a task, a receipt, a heartbeat).")
