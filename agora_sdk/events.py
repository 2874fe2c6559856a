"""What a live stream yields: a message pushed from the inbox, or a hub event (``agent_registered``, ``task_assigned``, …)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pydantic_core

from .wire.common import JSONObject, Output, UtcDatetime
from .wire.messaging import Message

CONTROL_FRAMES = frozenset({"ready", "pong", "acked", "error"})


class StreamEvent(Output):
    """``id`` is the resume token after this event; ``message`` is set for pushed messages, ``data`` for hub events."""

    type: str
    id: str
    message: Message | None = None
    tenant_id: str | None = None
    data: JSONObject | None = None
    timestamp: UtcDatetime | None = None

    @classmethod
    def parse_frame(cls, raw: str | bytes) -> list[StreamEvent]:
        """The events in a frame: one, several for a ``batch`` frame, none for the stream's own control frames."""
        frame: dict[str, Any] = pydantic_core.from_json(raw)
        kind = frame.get("type")
        if kind == "batch":
            return [cls.model_validate(event) for event in frame["events"]]
        return [] if kind in CONTROL_FRAMES else [cls.model_validate(frame)]


def stream_url(
    base: str, types: list[str] | None, resume: str | None, visibility_timeout: float | None, messages: int | None = None
) -> str:
    """The hub's ``/ws`` address for these filters (``ws://`` for ``http://``, ``wss://`` for ``https://``), asking for
    batch frames (several events per WebSocket frame when they come fast), and at most ``messages`` messages pushed
    before the client gives credit back."""
    params: dict[str, Any] = {"batch": 1}
    if messages is not None:
        params["messages"] = messages
    if types:
        params["types"] = ",".join(types)
    if resume:
        params["resume"] = resume
    if visibility_timeout is not None:
        params["visibility_timeout"] = visibility_timeout
    scheme, rest = base.split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws?{urlencode(params)}"
