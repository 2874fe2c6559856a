"""The one error hierarchy of Agora, shared by the hub and its clients.

Every error has a machine-readable ``code``, a human ``message`` and optional ``details``.
The hub raises these; each door maps them once (HTTP status + ``{"error": {...}}`` body,
JSON-RPC codes, MCP ``isError`` results); the SDK turns an error body back into the same class.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AgoraError(Exception):
    """Base class: ``code`` is stable and machine-readable, ``message`` is for people."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.status = status or self.http_status

    def to_body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"


class InvalidArgument(AgoraError):
    code = "invalid_argument"
    http_status = 400


class Unauthenticated(AgoraError):
    code = "unauthenticated"
    http_status = 401


class PermissionDenied(AgoraError):
    code = "permission_denied"
    http_status = 403


class NotFound(AgoraError):
    code = "not_found"
    http_status = 404


class MethodNotAllowed(AgoraError):
    code = "method_not_allowed"
    http_status = 405


class Conflict(AgoraError):
    code = "conflict"
    http_status = 409


class FailedPrecondition(AgoraError):
    code = "failed_precondition"
    http_status = 409


class BudgetExceeded(AgoraError):
    """The customer's budget (or an instance's cap) has nothing left for this: ``details`` say what is left and when
    the budget resets. Nothing was changed."""

    code = "budget_exceeded"
    http_status = 402


class PayloadTooLarge(AgoraError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaType(AgoraError):
    code = "unsupported_media_type"
    http_status = 415


class RateLimited(AgoraError):
    code = "rate_limited"
    http_status = 429


class Internal(AgoraError):
    code = "internal"
    http_status = 500


class Unavailable(AgoraError):
    code = "unavailable"
    http_status = 503


class StorageFull(Unavailable):
    """The hub's disk is full: writes are refused until space is freed (reads go on). Try again later."""

    code = "storage_full"
    http_status = 507


class DeadlineExceeded(AgoraError):
    """The work did not finish in the time the caller allowed (and was cancelled)."""

    code = "deadline_exceeded"
    http_status = 504


ERRORS_BY_CODE: dict[str, type[AgoraError]] = {
    cls.code: cls
    for cls in (
        InvalidArgument,
        Unauthenticated,
        PermissionDenied,
        NotFound,
        MethodNotAllowed,
        Conflict,
        FailedPrecondition,
        BudgetExceeded,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        Internal,
        Unavailable,
        StorageFull,
        DeadlineExceeded,
    )
}


def error_from_body(status: int, body: Any) -> AgoraError:
    """Rebuild the typed error from an HTTP error response body (used by the SDK)."""
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return AgoraError(f"HTTP {status}: {body!r}"[:500], status=status)
    cls = ERRORS_BY_CODE.get(str(err.get("code")), AgoraError)
    return cls(str(err.get("message", "")), details=err.get("details") or {}, status=status)
