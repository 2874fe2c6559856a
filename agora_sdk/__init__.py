"""Agora's client side: talk to a hub from Python. Never imports the server (``agora``)."""

from .client import AgoraClient, AsyncAgoraClient
from .errors import (
    AgoraError,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AgoraClient",
    "AsyncAgoraClient",
    "AgoraError",
    "Conflict",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "Unavailable",
]
