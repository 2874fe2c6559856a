"""Agora's client side: talk to a hub from Python. Never imports the server (``agora``).

``AgoraClient`` / ``AsyncAgoraClient`` call every tool; ``Agent`` runs an agent from a few handlers.

The client, the runtime and the event types are imported when first named (PEP 562): the hub imports this package for
its wire models and errors alone, and importing httpx and the runtime would add a third of a second to its start.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import (
    AgoraError,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    StorageFull,
    Unavailable,
)

if TYPE_CHECKING:
    from .agent import Agent, IncomingMessage, TaskRun
    from .client import AgoraClient, AsyncAgoraClient
    from .events import StreamEvent

_LAZY = {
    "Agent": "agent",
    "IncomingMessage": "agent",
    "TaskRun": "agent",
    "AgoraClient": "client",
    "AsyncAgoraClient": "client",
    "StreamEvent": "events",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


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
    "StorageFull",
    "Unavailable",
]
