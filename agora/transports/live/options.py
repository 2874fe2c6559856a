"""The query parameters both live doors share, checked before the stream opens."""

from __future__ import annotations

import re

from starlette.datastructures import QueryParams

from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.streams import Stream
from agora_sdk.errors import InvalidArgument

_PATTERN = re.compile(r"^[A-Za-z0-9_.*]{1,64}$")
MAX_PATTERNS = 20
KNOWN = {"types", "visibility_timeout", "resume"}


def open_stream(
    hub: Hub, principal: Principal, params: QueryParams, resume: str | None, door_params: frozenset[str] = frozenset()
) -> Stream:
    """``types``: comma-separated event types or globs (``agent_*``), or ``none`` (a socket only for calls and
    pushed tasks); ``visibility_timeout``: seconds a pushed message
    stays hidden from other consumers until acked; ``resume``: the ``id`` of the last frame processed.
    ``door_params``: the parameters one door adds (checked by that door)."""
    unknown = sorted(set(params) - KNOWN - door_params)
    if unknown:
        raise InvalidArgument(f"unknown parameter(s): {', '.join(unknown)}", details={"fields": unknown})
    types = [t for t in (params.get("types") or "*").split(",") if t]
    if not types or len(types) > MAX_PATTERNS or not all(_PATTERN.match(t) for t in types):
        raise InvalidArgument(
            f"types: up to {MAX_PATTERNS} comma-separated event types or globs such as agent_*", details={"field": "types"}
        )
    if "none" in types:
        if len(types) > 1:
            raise InvalidArgument("types: 'none' stands alone (no events or messages)", details={"field": "types"})
        types = []
    raw = params.get("visibility_timeout", "30")
    try:
        visibility = float(raw)
    except ValueError:
        visibility = -1.0
    if not 1 <= visibility <= 43_200:
        raise InvalidArgument("visibility_timeout: seconds between 1 and 43200", details={"field": "visibility_timeout"})
    return Stream(hub, principal, types=types, visibility_seconds=visibility, resume=resume or params.get("resume"))


def flag(params: QueryParams, name: str) -> bool:
    """A yes/no query parameter: ``1``/``true`` or ``0``/``false`` (absent: no)."""
    value = params.get(name, "0").lower()
    if value not in {"0", "1", "true", "false"}:
        raise InvalidArgument(f"{name}: 1 or 0 (true or false)", details={"field": name})
    return value in {"1", "true"}
