"""Unwrapping the exception groups that anyio task groups (the ``mcp`` SDK's, for one) wrap a failure in."""

from __future__ import annotations


def innermost(exc: BaseException) -> BaseException:
    """The first real error inside the exception groups around it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
