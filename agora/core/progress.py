"""Progress of the tool call in flight, for a door that can pass it on to its caller (MCP's notifications/progress).

A door that can report progress sets ``reporter`` around ``Catalog.call``; a long handler (an imported MCP tool
relaying its upstream's progress) reads it. Unset, progress goes nowhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

Reporter = Callable[[float, float | None, str | None], Awaitable[None]]

reporter: ContextVar[Reporter | None] = ContextVar("agora_progress_reporter", default=None)
