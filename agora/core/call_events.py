"""Events of the tool call in flight, for a door that streams them to its caller (the REST door's
``text/event-stream`` answer to a tool marked ``streams_events``): the marketplace chat's tool calls as they happen,
its answer's words as they come. A door sets ``listener`` around ``Catalog.call``; unset, events go nowhere."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]

listener: ContextVar[Listener | None] = ContextVar("agora_call_events", default=None)


def emit(event: str, data: dict[str, Any]) -> None:
    heard = listener.get()
    if heard is not None:
        heard(event, data)
