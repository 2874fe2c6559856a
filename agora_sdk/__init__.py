"""Agora's client side: talk to a hub from Python. Never imports the server (``agora``).

``AgoraClient`` / ``AsyncAgoraClient`` call every tool; ``Agent`` runs an agent from a few handlers.
"""

from .agent import Agent, IncomingMessage, TaskRun
from .client import AgoraClient, AsyncAgoraClient
from .errors import (
    AgoraError,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from .events import StreamEvent

__all__ = [
    "Agent",
    "AgoraClient",
    "AgoraError",
    "AsyncAgoraClient",
    "Conflict",
    "FailedPrecondition",
    "IncomingMessage",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "StreamEvent",
    "TaskRun",
    "Unauthenticated",
    "Unavailable",
]
