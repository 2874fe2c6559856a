"""Reading a tool's input from an HTTP request: a bounded JSON body, or query parameters for reads."""

from __future__ import annotations

import types
import typing
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request

from agora_sdk.errors import InvalidArgument, PayloadTooLarge, UnsupportedMediaType


async def read_json_body(request: Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object; 413 past ``limit`` bytes (checked while streaming), 415 if not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}", details={"limit": limit})
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes", details={"limit": limit})
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        return {}
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"send the input as JSON with 'Content-Type: application/json' (got {content_type or 'none'!r})",
            details={"content_type": content_type},
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"malformed JSON body: {exc}", details={"position": exc.pos}) from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"the JSON body must be an object, not {type(data).__name__}")
    return data


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is typing.Annotated:
        return _is_list(typing.get_args(annotation)[0])
    return origin in (list, set, tuple)


def _is_object(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_object(a) for a in typing.get_args(annotation) if a is not type(None))
    return origin is dict or (isinstance(annotation, type) and issubclass(annotation, BaseModel))


def query_input(request: Request, model: type[BaseModel]) -> dict[str, Any]:
    """Query parameters shaped for ``model``: lists from repeats or commas, objects from JSON text."""
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        field = model.model_fields.get(key)
        if field is not None and _is_list(field.annotation):
            data.setdefault(key, []).extend(v for v in value.split(",") if v)
        elif field is not None and _is_object(field.annotation):
            try:
                data[key] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise InvalidArgument(f"query parameter '{key}' must be JSON", details={"field": key}) from None
        elif key in data:
            raise InvalidArgument(f"query parameter '{key}' given more than once", details={"field": key})
        else:
            data[key] = value
    return data
