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
    def from_frame(cls, raw: str | bytes) -> StreamEvent | None:
        """The event in a frame, or None for the stream's own control frames."""
        frame: dict[str, Any] = pydantic_core.from_json(raw)
        if frame.get("type") in CONTROL_FRAMES:
            return None
        return cls.model_validate(frame)


def stream_url(base: str, types: list[str] | None, resume: str | None, visibility_timeout: float | None) -> str:
    """The hub's ``/ws`` address for these filters (``ws://`` for ``http://``, ``wss://`` for ``https://``)."""
    params: dict[str, Any] = {}
    if types:
        params["types"] = ",".join(types)
    if resume:
        params["resume"] = resume
    if visibility_timeout is not None:
        params["visibility_timeout"] = visibility_timeout
    scheme, rest = base.split("://", 1)
    query = f"?{urlencode(params)}" if params else ""
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws{query}"
