"""The A2A door's fast path: a plain blocking JSON-RPC ``SendMessage`` answered without the SDK's protobuf round trips.

For the commonest A2A call the SDK parses the JSON body, validates the envelope, converts the params to protobuf and
the message back to JSON for Agora's A2A service, then converts the task document to protobuf and back to JSON
again to answer: about a quarter of the hub's CPU per round trip. A request this path recognises — A2A-Version
``1.0``, exactly the envelope ``jsonrpc``/``id``/``method``/``params``, params holding only a ``message`` whose
fields and text parts are all of the plain kinds below — is sent and answered here with the same service calls as
``AgoraRequestHandler.on_message_send``, its message and answer printed as protobuf's JSON printer prints them
(field order, defaults left out, timestamps' fractions cut to 0, 3 or 6 digits).

Anything else goes to the SDK with the body it read handed on: other methods and versions, a configuration,
metadata, non-text parts, a body orjson refuses (NaN, lone surrogates). An answer holding what the plain printer
does not print (artifacts, metadata, data parts) is printed by protobuf's own printer. ``tests/test_a2a_fast_path``
sends a corpus to a hub with this path and to one without it and compares the answers byte for byte.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict, ParseDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from a2a.server.request_handlers.response_helpers import build_error_response
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import A2AError
from agora.observability import metrics

from .access import Endpoint, Front
from .handler import AgoraRequestHandler, a2a_errors, send_answer

ENVELOPE = frozenset({"jsonrpc", "id", "method", "params"})
MESSAGE = frozenset({"messageId", "contextId", "taskId", "role", "parts", "extensions", "referenceTaskIds"})
TASK = frozenset({"id", "contextId", "status", "history"})
STATUS = frozenset({"state", "message", "timestamp"})
ROLES = frozenset({"ROLE_USER", "ROLE_AGENT"})
STATES = frozenset(name for name in pb.TaskState.keys() if name != "TASK_STATE_UNSPECIFIED")
TEXT = frozenset({"text"})


class NotPlain(Exception):
    """A value this module does not print exactly as protobuf would."""


def served(endpoint: Endpoint, handler: AgoraRequestHandler) -> Endpoint:
    """``endpoint`` (the SDK's JSON-RPC route for agents' fronts) with plain blocking sends answered here first."""

    async def answered(request: Request) -> Response:
        if request.headers.getlist("a2a-version") == ["1.0"]:
            plain = plain_send(await request.body())  # kept by the request: the SDK reads the same bytes
            if plain is not None:
                metrics.count_a2a_request("fast")
                return await _send(handler, request.scope["agora.front"], *plain)
        metrics.count_a2a_request("sdk")
        return await endpoint(request)

    return answered


def plain_send(body: bytes) -> tuple[int | str, dict[str, Any]] | None:
    """The id and the message (as the SDK would hand it on: protobuf's JSON form) of a plain SendMessage; else None."""
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict) or envelope.keys() != ENVELOPE:
        return None
    request_id, params = envelope["id"], envelope["params"]
    if envelope["jsonrpc"] != "2.0" or envelope["method"] != "SendMessage" or isinstance(request_id, bool) or not isinstance(request_id, (int, str)):
        return None
    if not isinstance(params, dict) or params.keys() != {"message"}:
        return None
    try:
        message = _message(params["message"])
    except NotPlain:
        return None
    return (request_id, message) if message.get("parts") else None  # no parts: the SDK's path refuses it


async def _send(handler: AgoraRequestHandler, front: Front, request_id: int | str, message: dict[str, Any]) -> Response:
    try:
        with a2a_errors():
            task = await handler.sent(front, message, None, blocking=True)
            kind, answer = send_answer(task)
            try:
                printed = _message(answer) if kind == "message" else _task(answer)
                return Response(orjson.dumps(_envelope(request_id, {kind: printed})), media_type="application/json")
            except (NotPlain, TypeError):  # TypeError: a string orjson will not write (a lone surrogate)
                parsed = ParseDict(answer, pb.Message() if kind == "message" else pb.Task())
                return JSONResponse(_envelope(request_id, MessageToDict(pb.SendMessageResponse(**{kind: parsed}))))
    except A2AError as error:
        return JSONResponse(build_error_response(request_id, error))


def _envelope(request_id: int | str, result: dict[str, Any]) -> dict[str, Any]:
    return {"result": result, "id": request_id, "jsonrpc": "2.0"}  # the SDK's (python-jsonrpc's) key order


# -- printing as protobuf's JSON printer does --------------------------------------------------------------------------


def _message(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not value.keys() <= MESSAGE:
        raise NotPlain
    printed: dict[str, Any] = {}
    for key in ("messageId", "contextId", "taskId"):
        if _string(value.get(key, "")):
            printed[key] = value[key]
    role = value.get("role")
    if role is not None:
        if role not in ROLES:
            raise NotPlain
        printed["role"] = role
    parts = value.get("parts", [])
    if not isinstance(parts, list):
        raise NotPlain
    if parts:
        printed["parts"] = [_text_part(part) for part in parts]
    for key in ("extensions", "referenceTaskIds"):
        strings = value.get(key, [])
        if not isinstance(strings, list) or not all(isinstance(s, str) for s in strings):
            raise NotPlain
        if strings:
            printed[key] = strings
    return printed


def _text_part(part: Any) -> dict[str, str]:
    if not isinstance(part, dict) or part.keys() != TEXT or not isinstance(part["text"], str):
        raise NotPlain
    return {"text": part["text"]}  # a oneof member: printed even when empty


def _task(task: dict[str, Any]) -> dict[str, Any]:
    if not task.keys() <= TASK:
        raise NotPlain  # artifacts, metadata
    printed: dict[str, Any] = {key: task[key] for key in ("id", "contextId") if _string(task.get(key, ""))}
    status = task["status"]
    if not status.keys() <= STATUS or status["state"] not in STATES:
        raise NotPlain
    printed["status"] = {"state": status["state"]}
    if "message" in status:
        printed["status"]["message"] = _message(status["message"])
    if "timestamp" in status:
        printed["status"]["timestamp"] = _timestamp(status["timestamp"])
    if task.get("history"):
        printed["history"] = [_message(message) for message in task["history"]]
    return printed


def _string(value: Any) -> bool:
    """Whether the string field is printed (proto3 leaves out an empty one)."""
    if not isinstance(value, str):
        raise NotPlain
    return value != ""


def _timestamp(value: Any) -> str:
    """An ISO time as ``iso_utc`` writes it (``…:SS`` or ``…:SS.ffffff``, then ``Z``), as protobuf prints a Timestamp:
    its fraction in 3 digits when it is whole milliseconds, none when it is 0."""
    if not isinstance(value, str) or len(value) not in (20, 27) or value[-1] != "Z" or value[10] != "T":
        raise NotPlain
    if len(value) == 20:
        return value
    micros = value[20:26]
    if not micros.isdigit():
        raise NotPlain
    if micros == "000000":
        return value[:19] + "Z"
    return value[:19] + ("." + micros[:3] if micros.endswith("000") else "." + micros) + "Z"
