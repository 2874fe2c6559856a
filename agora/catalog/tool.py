"""One tool: a versioned name, its models, the scopes it needs and one handler."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Awaitable, Callable

from agora.core.context import CallContext
from agora_sdk.wire.common import Input, Output, ToolStatus

NAME_RE = re.compile(r"^agora\.[a-z][a-z0-9_]*(\.[a-z][a-z_]*)+$")
EXT_PREFIX = "ext."  # tools imported from external MCP servers: ext.<server>.<upstream tool name>
EXT_NAME_RE = re.compile(r"^ext\.[a-z][a-z0-9_-]*\.[A-Za-z0-9_.-]{1,128}$")

Handler = Callable[[CallContext, Any], Awaitable[Output]]


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    description: str
    input_model: type[Input]
    output_model: type[Output]
    handler: Handler
    scopes: frozenset[str] = frozenset()
    read_only: bool = False
    admin_only: bool = False
    new_work: bool = True  # refused while the hub is halted (reads, admin tools and draining an inbox are not)
    status: ToolStatus = ToolStatus.active
    deprecation_date: date | None = None
    sunset_date: date | None = None
    replacement: str | None = None
    last_updated: date = date(2026, 11, 22)
    answers_accepted: bool = False  # may answer 202 Accepted (its handler sets CallContext.accepted): OpenAPI says so
    long_running: bool = False  # may wait long: MCP clients may run it as a task (transports/mcp/tasks.py)
    streams_events: bool = False  # emits events while it runs (core/call_events.py): REST answers them as SSE when asked
    schema_override: dict[str, Any] | None = None  # an imported tool's own input schema (the upstream validates)
    # Its calls reach across tenants by design and check who may see what themselves, so they run hub-wide under
    # PostgreSQL's row-level security (store/tenancy.py): the marketplace (a listing, the instances other tenants run
    # of it, the nodes that host them).
    crosses_tenants: bool = False
    _schema_cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (NAME_RE.match(self.name) or EXT_NAME_RE.match(self.name)):
            raise ValueError(f"tool name {self.name!r} is not agora.{{category}}.{{action}}")
        if self.status is ToolStatus.deprecated and not (self.replacement and self.deprecation_date):
            raise ValueError(f"deprecated tool {self.name} needs a replacement and a deprecation date")

    @property
    def category(self) -> str:
        return "ext" if self.name.startswith(EXT_PREFIX) else self.name.split(".")[1]

    @property
    def action(self) -> str:
        return ".".join(self.name.split(".")[2:])

    @property
    def rate_class(self) -> str:
        """Which of a key's rate limits a call of this tool counts against (``agora.limits.rules``)."""
        return "read" if self.read_only else "write"

    @property
    def refused_when_halted(self) -> bool:
        return self.new_work and not self.read_only and self.category != "admin"

    @property
    def http_path(self) -> str:
        return "/" + self.name.replace(".", "/")

    @property
    def http_methods(self) -> list[str]:
        return ["GET", "POST"] if self.read_only else ["POST"]

    def input_schema(self) -> dict[str, Any]:
        if self.schema_override is not None:
            return self.schema_override
        if "input" not in self._schema_cache:
            self._schema_cache["input"] = self.input_model.model_json_schema()
        return self._schema_cache["input"]

    def output_schema(self) -> dict[str, Any]:
        if "output" not in self._schema_cache:
            self._schema_cache["output"] = self.output_model.model_json_schema(mode="serialization")
        return self._schema_cache["output"]
