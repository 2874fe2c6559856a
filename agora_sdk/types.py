"""The enums and models an agent's code names, in one import: ``from agora_sdk.types import TaskStatus, MessageType``."""

from __future__ import annotations

from enum import StrEnum

from .wire.agents import Agent, AgentList, Registration
from .wire.common import AgentStatus, ServiceTier, ToolStatus
from .wire.messaging import Message, MessageReceipt, Performative, PriorityLevel
from .wire.tasks import Claimed, Lease, Task, TaskList, TaskStatus


class MessageType(StrEnum):
    """Well-known message types. Any short string is a valid ``message_type``; these are the ones seed 000 uses."""

    INFO = "info"
    TASK = "task"
    ALERT = "alert"
    SYSTEM = "system"
    INTRODUCTION = "introduction"
    TASK_ASSIGNMENT = "task_assignment"
    TASK_COMPLETION = "task_completion"
    STATUS_UPDATE = "status_update"
    ERROR = "error"


Priority = PriorityLevel

__all__ = [
    "Agent",
    "AgentList",
    "AgentStatus",
    "Claimed",
    "Lease",
    "Message",
    "MessageReceipt",
    "MessageType",
    "Performative",
    "Priority",
    "Registration",
    "ServiceTier",
    "Task",
    "TaskList",
    "TaskStatus",
    "ToolStatus",
]
