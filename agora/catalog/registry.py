"""The catalog holds every tool and runs a call: the same checks and accounting for every door."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pydantic import ValidationError

from agora.core.auth import Principal
from agora.core.context import CallContext, Hub
from agora.observability import metrics
from agora_sdk.errors import AgoraError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from agora_sdk.wire.common import Output

from .tool import Tool


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

    def get(self, name: str) -> Tool:
        tool = self._tools.get(name)
        if tool is None:
            raise NotFound(f"unknown tool '{name}'", details={"tool": name})
        return tool

    async def call(self, hub: Hub, principal: Principal, name: str, args: Any, request_id: str) -> tuple[Tool, Output, CallContext]:
        """Authorise, validate and run one tool call. ``args`` is a dict (or JSON bytes) of the input."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            tool = self.get(name)
            _authorise(hub, principal, tool)
            request = validate_input(tool, args)
            ctx = CallContext(hub=hub, principal=principal, request_id=request_id, tool=tool.name)
            result = await tool.handler(ctx, request)
            return tool, result, ctx
        except AgoraError as exc:
            outcome = exc.code
            raise
        except BaseException:
            outcome = "internal"
            raise
        finally:
            metrics.record_call(name if name in self._tools else "unknown", outcome, time.perf_counter() - started)


def validate_input(tool: Tool, args: Any) -> Any:
    try:
        if isinstance(args, (bytes, str)):
            return tool.input_model.model_validate_json(args or b"{}")
        return tool.input_model.model_validate(args)
    except ValidationError as exc:
        raise invalid_input(tool.name, exc) from None


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
    return InvalidArgument(
        f"invalid input for {tool_name}: {first['field']}: {first['message']}{more}",
        details={"errors": errors},
        status=422,
    )


def _authorise(hub: Hub, principal: Principal, tool: Tool) -> None:
    if tool.admin_only and not principal.is_admin:
        raise PermissionDenied(f"{tool.name} is reserved to the hub administrator (authority 255)")
    principal.require_scopes(tool.scopes, tool.name)
    if tool.read_only:
        return
    if hub.halt.halted and tool.category != "admin":
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
