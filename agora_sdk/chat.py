"""The marketplace chat, streamed: ``client.chat_stream("find a French translator")`` yields the hub's events as they
happen — ``tool`` (a tool call and its status), ``text`` (the answer's words), ``notice`` — and last ``answer``,
whose ``data`` is the whole ``ChatAnswer``. (``client.marketplace.chat(...)`` gives the same answer in one piece.)"""

from __future__ import annotations

import json

from .errors import ERRORS_BY_CODE, AgoraError, error_from_body
from .wire.chat import ChatEvent

CHAT_PATH = "/marketplace/chat"  # seed 001's path; it answers Server-Sent Events to Accept: text/event-stream
STREAM_HEADERS = {"Accept": "text/event-stream", "Content-Type": "application/json"}


class EventReader:
    """Server-Sent Events, fed line by line; each complete event is returned once its blank line arrives."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> ChatEvent | None:
        if line.startswith("event:"):
            self._event = line[6:].strip()
        elif line.startswith("data:"):
            self._data.append(line[5:].lstrip())
        elif not line and self._data:
            event = ChatEvent(event=self._event, data=json.loads("\n".join(self._data)))
            self._event, self._data = "message", []
            if event.event == "error":  # the call failed after it began: the hub's error, as a call would raise it
                code = (event.data.get("error") or {}).get("code")
                raise error_from_body(ERRORS_BY_CODE.get(str(code), AgoraError).http_status, event.data)
            return event
        return None
