"""The catalog holds every tool and runs a call: the same checks and accounting for every door."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, NoReturn

import orjson
from pydantic import ValidationError

from agora.core.auth import Principal
from agora.core.context import CallContext, Hub
from agora.observability import metrics
from agora.store import tenancy
from agora_sdk.errors import (
    AgoraError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from agora_sdk.wire.common import Output

from .tool import EXT_PREFIX, Tool


class Catalog:
    def __init__(self, tools: list[Tool]):
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self._tools:
                raise ValueError(f"tool {tool.name} is defined twice")
            self._tools[tool.name] = tool

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def get(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is None:
            raise NotFound(f"unknown tool '{name}'", details={"tool": name})
        return tool

    def admit(self, hub: Hub, principal: Principal, name: str, args: Any) -> Tool:
        """The tool ``name``, if ``principal`` may call it now with ``args`` (else the error the call would answer),
        without running it: for a door that runs the call later (``agora.tools.start``)."""
        tool = self._find(hub, principal, name)
        _authorise(hub, principal, tool)
        validate_input(tool, args)
        return tool

    def _find(self, hub: Hub, principal: Principal, name: str) -> Tool:
        return hub.gateway.tool(principal, name) if name.startswith(EXT_PREFIX) and hub.gateway else self.get(name)

    async def call(self, hub: Hub, principal: Principal, name: str, args: Any, request_id: str) -> tuple[Tool, Output, CallContext]:
        """Authorise, validate and run one tool call. ``args`` is the input as a dict (doors parse their own wire format)."""
        started = time.perf_counter()
        outcome, status = "ok", 200
        try:
            tool = self._find(hub, principal, name)
            _authorise(hub, principal, tool)
            await hub.throttle.charge(principal.limit_key, principal.kind.value, tool.rate_class)
            request = validate_input(tool, args)
            ctx = CallContext(hub=hub, principal=principal, request_id=request_id, tool=tool.name)
            # Row-level security: the caller's tenant's rows only.
            scope = tenancy.serve(None if tool.crosses_tenants else principal.tenant_scope())
            try:
                result = await tool.handler(ctx, request)
            finally:
                tenancy.restore(scope)
            return tool, result, ctx
        except AgoraError as exc:
            outcome, status = exc.code, exc.status
            raise
        except BaseException:
            outcome, status = "internal", 500
            raise
        finally:
            known = name in self._tools or name.startswith(EXT_PREFIX)
            seconds = time.perf_counter() - started
            metrics.record_call(name if known else "unknown", outcome, seconds)
            hub.activity.call(principal.tenant_id, status, seconds)


# Deeper input cannot be serialised back (pydantic and orjson stop near 255 levels), so it is refused up front.
MAX_INPUT_DEPTH = 64
MAX_REPORTED_ERRORS = 20  # a 1,000-message batch with one mistake each should not answer with 3,000 errors


def validate_input(tool: Tool, args: Any) -> Any:
    _check_values(tool.name, args)
    try:
        return tool.input_model.model_validate(args)
    except ValidationError as exc:
        raise invalid_input(tool.name, exc) from None


def _check_values(tool_name: str, args: Any) -> None:
    """What the models cannot say: no NUL character in any text (PostgreSQL refuses it), no absurd nesting."""
    if not _surely_clean(args):
        _refuse_first_flaw(tool_name, args)


def _surely_clean(args: Any) -> bool:
    """No NUL and no container nested too deep, checked fast: a NUL is escaped as ``\\u0000`` in JSON, input with
    fewer brackets in all than the depth allowed cannot nest that deep (a bracket inside a string only adds to the
    count), and otherwise only the containers are walked. (The walk that names the field visits every value: ~5 µs
    per message of a batch.) False may be wrong: the input then gets that walk."""
    try:
        dumped = orjson.dumps(args)
    except TypeError:  # not plain JSON (orjson's errors are TypeErrors): let the walk judge
        return False
    if b"\\u0000" in dumped:
        return False
    if dumped.count(b"{") + dumped.count(b"[") < MAX_INPUT_DEPTH:
        return True
    return not isinstance(args, (dict, list, tuple)) or not _nests_deeper(args, 1)


def _nests_deeper(container: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> bool:
    """Whether a container inside ``container`` (itself ``depth - 1`` levels down) is MAX_INPUT_DEPTH levels down."""
    for item in container.values() if isinstance(container, dict) else container:
        if isinstance(item, (dict, list, tuple)) and (depth >= MAX_INPUT_DEPTH or _nests_deeper(item, depth + 1)):
            return True
    return False


def _refuse_first_flaw(tool_name: str, args: Any) -> None:
    """Walk every value; refuse the first NUL or too-deep container, naming where it is."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(args, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                _refuse(tool_name, path, "text must not contain NUL (\\u0000) characters", "string_nul")
            continue
        if isinstance(value, dict):
            items: Any = value.items()
        elif isinstance(value, (list, tuple)):
            items = enumerate(value)
        else:
            continue
        if len(path) >= MAX_INPUT_DEPTH:
            _refuse(tool_name, path, f"nested too deep (more than {MAX_INPUT_DEPTH} levels)", "too_deep")
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                _refuse(tool_name, (*path, key), "names must not contain NUL (\\u0000) characters", "string_nul")
            stack.append((item, (*path, key)))


def _refuse(tool_name: str, path: tuple[Any, ...], message: str, kind: str) -> NoReturn:
    name = ".".join(str(p) for p in path) or "(body)"
    raise InvalidArgument(
        f"invalid input for {tool_name}: {name}: {message}",
        details={"errors": [{"field": name, "message": message, "type": kind}]},
        status=422,
    )


def invalid_input(tool_name: str, exc: ValidationError) -> InvalidArgument:
    errors = [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    details: dict[str, Any] = {"errors": errors[:MAX_REPORTED_ERRORS]}
    if len(errors) > MAX_REPORTED_ERRORS:
        details["errors_not_shown"] = len(errors) - MAX_REPORTED_ERRORS
    return InvalidArgument(f"invalid input for {tool_name}: {first['field']}: {first['message']}{more}", details=details, status=422)


def _authorise(hub: Hub, principal: Principal, tool: Tool) -> None:
    if tool.admin_only and not principal.is_admin:
        raise PermissionDenied(f"{tool.name} is reserved to the hub administrator (authority 255)")
    principal.require_scopes(tool.scopes, tool.name)
    if tool.read_only:
        return
    if hub.halt.halted and tool.refused_when_halted:
        raise Unavailable(
            "the hub is halted by an administrator and refuses new work until it is resumed",
            details={"reason": "system_halted", "override_id": hub.halt.override_id, "halt_reason": hub.halt.reason},
        )
    if principal.agent_status in ("paused", "terminated"):
        raise FailedPrecondition(
            f"agent {principal.agent_id} is {principal.agent_status} by an administrator",
            details={"reason": f"agent_{principal.agent_status}", "agent_id": principal.agent_id},
        )


def build_catalog() -> Catalog:
    from .tools import all_tools

    return Catalog(all_tools())
