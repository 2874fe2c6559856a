"""MCP tasks: the ``io.modelcontextprotocol/tasks`` extension (SEP-2663) on 2026-07-28 requests.

A client that declares the extension (in its capabilities, or in one request's ``_meta``) and calls a tool that
supports tasks gets a ``CreateTaskResult`` at once instead of waiting: catalog tools marked ``long_running`` and
every imported ``ext.*`` tool are started with ``agora.tools.start``, so the call is an Agora task of type
``tool.call`` (durable, on every replica, visible to ``agora.task.get``); an extension's own task tools run the same
way (``ToolRuns``). ``tasks/get`` reads the task through ``agora.task.get`` as a DetailedTask with the call's result
inlined once it ended (a tool's error is a completed task whose result says ``isError``; a call that could not run,
or that was lost with the replica running it, is a failed task with an ``error``); ``tasks/cancel`` cancels it with
``agora.task.cancel`` and always acks; ``tasks/update`` delivers answers. A task that is not the caller's is as unknown as one that does not exist
(-32602). Without the extension declared, ``tasks/*`` answer -32021 and tools run synchronously.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ConfigDict, Field

from agora.catalog import Tool
from agora.catalog.tool import EXT_PREFIX
from agora.core.ids import new_id
from agora.core.services.tool_runs import TASK_TYPE, RunContext
from agora_sdk.errors import AgoraError, Conflict

from .results import failed

if TYPE_CHECKING:
    from .extension import McpExtension
    from .legacy_tasks import LegacyTasks

EXTENSION = "io.modelcontextprotocol/tasks"
POLL_INTERVAL_MS = 500
STATUS = {"in_progress": "working", "pending": "working", "completed": "completed", "cancelled": "cancelled"}
LOST = "the hub running the call stopped before it finished (its lease expired); call the tool again"
Context = ServerRequestContext[Any]


class UpdateTaskParams(types.RequestParams):
    """tasks/update: answers to a task's input requests."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")
    task_id: str = Field(alias="taskId")
    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


def declared(ctx: Context) -> bool:
    """Whether this request's client declared the extension: in its capabilities, or in the request's ``_meta``."""
    capabilities = ctx.session.client_capabilities
    if capabilities is not None and EXTENSION in (capabilities.extensions or {}):
        return True
    meta: Any = ctx.meta or {}
    if not isinstance(meta, dict):
        meta = meta.model_dump(by_alias=True)
    return wants_tasks(meta.get(types.CLIENT_CAPABILITIES_META_KEY))


def wants_tasks(capabilities: dict[str, Any] | None) -> bool:
    """Whether client capabilities (their JSON, as a request's ``_meta`` carries them) declare the extension."""
    return EXTENSION in ((capabilities or {}).get("extensions") or {})


def support(tool: Tool | None) -> str | None:
    """A catalog or imported tool's taskSupport: optional for long calls, none for the rest."""
    if tool is None:
        return None
    return "optional" if tool.long_running or tool.name.startswith(EXT_PREFIX) else None


def missing_extension() -> MCPError:
    return MCPError(
        types.MISSING_REQUIRED_CLIENT_CAPABILITY,
        f"this needs the client capability extensions['{EXTENSION}']",
        data={"requiredCapabilities": {"extensions": {EXTENSION: {}}}},
    )


def as_task(ctx: Context, support_level: str | None) -> bool:
    """Whether a call of a tool with ``support_level`` becomes a task (a required one without the extension: -32021)."""
    modern = ctx.session.protocol_version in MODERN_PROTOCOL_VERSIONS
    wanted = support_level in ("optional", "required") and modern and declared(ctx)
    if support_level == "required" and not wanted:  # 2025-11-25: a call without params.task (one with it is a task)
        raise missing_extension() if modern else MCPError(types.METHOD_NOT_FOUND, "this tool runs only as a task: call it with params.task")
    return wanted


def created(task: dict[str, Any]) -> dict[str, Any]:
    """The CreateTaskResult of a task just started (flat: the task's fields beside resultType)."""
    return {"resultType": "task", **_envelope(task)}


def _envelope(task: dict[str, Any]) -> dict[str, Any]:
    return {
        "taskId": task["task_id"],
        "status": "working" if task["status"] in ("pending", "in_progress") else STATUS.get(task["status"], "failed"),
        "createdAt": _iso(task["created_at"]),
        "lastUpdatedAt": _iso(task["updated_at"]),
        "ttlMs": None,  # kept as long as the hub keeps finished tasks
        "pollIntervalMs": POLL_INTERVAL_MS,
    }


def _iso(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat().replace("+00:00", "Z")


class McpTasks:
    """The tasks/* handlers, and the start of a task-supporting call."""

    def __init__(self, extension: McpExtension | None, caller: Any, as_result: Any):
        self.extension = extension
        self.caller = caller  # ctx -> (hub, principal, toolsets)
        self.as_result = as_result  # a catalog tool's output -> its CallToolResult

    def install(self, server: Any, legacy: LegacyTasks) -> None:
        """The extension's handlers; on a 2025-11-25 session tasks/get and tasks/cancel are that revision's (``legacy``),
        as are tasks/result and tasks/list, which the extension does not have."""
        server.extensions[EXTENSION] = {}
        server.add_request_handler("tasks/get", types.GetTaskRequestParams, by_revision(self.get, legacy.get))
        server.add_request_handler("tasks/cancel", types.CancelTaskRequestParams, by_revision(self.cancel, legacy.cancel))
        server.add_request_handler("tasks/update", UpdateTaskParams, by_revision(self.update, None))
        server.add_request_handler("tasks/result", types.GetTaskPayloadRequestParams, by_revision(None, legacy.result))
        server.add_request_handler("tasks/list", types.PaginatedRequestParams, by_revision(None, legacy.list_tasks))

    async def start(self, ctx: Context, params: types.CallToolRequestParams) -> dict[str, Any]:
        """Start a catalog or imported tool's call as a task: its row (a refusal raises, as the call's would)."""
        hub, principal, _ = self.caller(ctx)
        arguments = {"name": params.name, "arguments": params.arguments or {}}
        _, task, _ = await hub.catalog.call(hub, principal, "agora.tools.start", arguments, new_id("req"))
        return dict(task.model_dump(mode="json"))

    async def start_extension(self, ctx: Context, params: types.CallToolRequestParams, call: Any) -> dict[str, Any]:
        """Start an extension tool's call as a task (its row); its CallToolResult is the task's output. A round that asks for
        input (an InputRequiredResult) parks the task as input_required until tasks/update has answered every
        request; the next round runs with the answers (and the round's requestState)."""
        hub, principal, _ = self.caller(ctx)

        async def output(run: RunContext) -> dict[str, Any]:
            round_params = params
            while True:
                outcome = await call(round_params)
                if not isinstance(outcome, types.InputRequiredResult):
                    return dict(outcome.model_dump(mode="json", by_alias=True, exclude_none=True))
                asked = {k: r.model_dump(mode="json", by_alias=True, exclude_none=True) for k, r in (outcome.input_requests or {}).items()}
                answers = await run.ask(asked)
                wire = round_params.model_dump(mode="json", by_alias=True, exclude_none=True)
                round_params = types.CallToolRequestParams.model_validate(
                    {**wire, "inputResponses": answers, "requestState": outcome.request_state}
                )

        return await hub.tool_runs.start(principal, params.name, params.arguments or {}, output)

    # -- tasks/* ------------------------------------------------------------------------------------------------

    async def get(self, ctx: Context, params: types.GetTaskRequestParams) -> dict[str, Any]:
        task = await self.task(ctx, params.task_id)
        detailed = _envelope(task)
        waiting = (task["result"] or {}).get("input") if task["status"] == "in_progress" else None
        if detailed["status"] == "working" and not waiting and (said := await self.said(ctx, task)):
            detailed["statusMessage"] = said
        if waiting:
            detailed["status"] = "input_required"
            detailed["inputRequests"] = {k: r for k, r in waiting["requests"].items() if k not in waiting["responses"]}
        elif task["status"] == "completed":
            detailed["result"] = self.result_of(task["result"])
        elif task["status"] in ("failed", "dead_letter"):
            failure = (task["result"] or {}).get("error")
            if failure is not None:  # the tool ran and said no: a completed task whose result is the tool's error
                detailed["status"] = "completed"
                detailed["result"] = self.result_of(task["result"])
            else:
                reason = LOST if task["last_error"] == "lease expired" else task["last_error"] or "the call failed"
                detailed["error"] = {"code": types.INTERNAL_ERROR, "message": reason}
        return detailed

    async def cancel(self, ctx: Context, params: types.CancelTaskRequestParams) -> dict[str, Any]:
        task = await self.task(ctx, params.task_id)
        hub, principal, _ = self.caller(ctx)
        with contextlib.suppress(Conflict):  # already ended: the ack is the same (the task's state says how it ended)
            await hub.catalog.call(hub, principal, "agora.task.cancel", {"task_id": task["task_id"]}, new_id("req"))
        return {}

    async def update(self, ctx: Context, params: UpdateTaskParams) -> dict[str, Any]:
        """Answers to what an input_required task asked (some or all of its requests; others are ignored): an ack."""
        await self.task(ctx, params.task_id)
        hub, principal, _ = self.caller(ctx)
        await hub.tool_runs.answer(principal, params.task_id, params.input_responses)
        return {}

    async def said(self, ctx: Context, task: dict[str, Any]) -> str | None:
        """A working task's status message: the last line its call reported (the run's output, ``tool_runs``)."""
        hub, principal, _ = self.caller(ctx)
        _, output, _ = await hub.catalog.call(hub, principal, "agora.task.watch", {"task_id": task["task_id"], "last": 1}, new_id("req"))
        last = output.chunks[-1] if output.chunks else None
        return last.text.rstrip("\n") if last is not None and last.kind == "text" and last.text else None

    async def task(self, ctx: Context, task_id: str) -> dict[str, Any]:
        """The caller's tool-call task ``task_id`` (read through agora.task.get); -32021 or -32602 otherwise."""
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            if not declared(ctx):
                raise missing_extension()
            _check_name_header(ctx, task_id)
        hub, principal, _ = self.caller(ctx)
        try:
            _, task, _ = await hub.catalog.call(hub, principal, "agora.task.get", {"task_id": task_id}, new_id("req"))
        except AgoraError:
            task = None
        row = task.model_dump(mode="json") if task is not None else None
        if row is None or row["task_type"] != TASK_TYPE or row["created_by"] != principal.label:
            raise MCPError(types.INVALID_PARAMS, f"unknown task '{task_id}'", data={"taskId": task_id})
        return row

    def result_of(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A finished task's stored outcome as the CallToolResult its call would have answered."""
        name = stored.get("name", "")
        if "error" in stored:
            return failed(stored["error"])
        if self.extension is not None and self.extension.has_tool(name):
            return dict(stored["output"])  # the extension's own CallToolResult
        return self.as_result(name, stored["output"])


def by_revision(modern: Any, legacy: Any) -> Any:
    """One handler per revision for a method both share (None: the method is not that revision's: -32601)."""

    async def handler(ctx: Context, params: Any) -> Any:
        chosen = modern if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else legacy
        if chosen is None:
            raise MCPError(types.METHOD_NOT_FOUND, "Method not found", data=ctx.method)
        return await chosen(ctx, params)

    return handler


def _check_name_header(ctx: Context, task_id: str) -> None:
    """SEP-2663: tasks/* carry ``Mcp-Name: <taskId>``; one that names another task is a header mismatch."""
    named = ctx.request.headers.get("mcp-name") if ctx.request is not None else None
    if named is not None and named != task_id:
        raise MCPError(types.HEADER_MISMATCH, "mcp-name header does not match the request body's 'taskId' parameter")

