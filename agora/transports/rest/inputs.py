"""Reading a tool's input from an HTTP request: a JSON object body (no key twice), or query parameters for reads."""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import orjson
from pydantic import BaseModel
from starlette.requests import Request

from agora_sdk.errors import InvalidArgument, UnsupportedMediaType


async def read_json_body(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 415 if not JSON. (Its size was bounded at the edge: ``agora.transports.edge``.)"""
    body = await request.body()
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
    if body.count(b":") != _key_count(data):  # a colon inside a string, or a key given twice
        try:
            json.loads(body, object_pairs_hook=_refuse_repeated_keys)
        except RecursionError:
            raise InvalidArgument("the JSON body is nested too deeply") from None
    return data


def _key_count(value: Any) -> int:
    """How many object keys ``value`` holds, at every depth. Each key in the text has a colon after it, so when the
    text has no more colons than the parsed value has keys, no key was given twice (and no string holds a colon)."""
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            count += len(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return count


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON leaves a repeated key's meaning open and parsers disagree (first wins, last wins): refuse it."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        repeated = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise InvalidArgument(f"the JSON body gives the key {repeated!r} twice in one object", details={"key": repeated})
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
