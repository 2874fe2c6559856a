"""MCP tasks on 2025-11-25 sessions: that revision's experimental tasks utility, over the same Agora tasks.

The server declares ``capabilities.tasks`` (list, cancel, ``requests.tools.call``) and each long tool's
``execution.taskSupport``; a ``tools/call`` carrying ``params.task`` answers a ``CreateTaskResult`` at once (a tool
that takes no tasks: -32601). ``tasks/get`` and ``tasks/cancel`` answer the task's state (cancelling one that ended:
-32602), ``tasks/result`` waits for the end and answers the call's own ``CallToolResult`` (a call that could not
run: its JSON-RPC error), ``tasks/list`` pages through the caller's tasks, and the session's stream hears
``notifications/tasks/status`` when a task it started ends. A tool's ``isError`` result is a ``failed`` task here,
as this revision says. The call itself runs as with the 2026-07-28 extension (``tasks.McpTasks``): an Agora task
of type ``tool.call`` that outlives this replica.

The SDK validates a 2025-11-25 ``tools/call`` result as a ``CallToolResult`` and has no slot for the tasks
capability, so the two answers it cannot shape are made by a server middleware (``__call__``), which the SDK lets
answer on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import methods

from agora.core.ids import new_id
from agora_sdk.errors import AgoraError, Conflict

from .tasks import LOST, POLL_INTERVAL_MS, _iso

if TYPE_CHECKING:
    from .tasks import McpTasks

log = logging.getLogger("agora.mcp")

REVISION = "2025-11-25"
CAPABILITY = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
RELATED = "io.modelcontextprotocol/related-task"
TERMINAL = frozenset({"completed", "failed", "cancelled", "dead_letter"})
RECHECK_SECONDS = 5.0  # a wake-up lost between replicas delays tasks/result by this much at most
WATCH_SECONDS = 3600.0  # a status notification is owed for an hour at most
MAX_WATCHED = 1000  # tasks of this replica's sessions whose ends are watched for notifications
LIST_PAGE = 100
Context = ServerRequestContext[Any]
Starter = Callable[[Context, types.CallToolRequestParams], Awaitable[dict[str, Any]]]


def task_fields(row: dict[str, Any]) -> dict[str, Any]:
    """An Agora tool.call task as this revision's Task."""
    status, message = _status(row)
    fields = {
        "taskId": row["task_id"],
        "status": status,
        "createdAt": _iso(row["created_at"]),
        "lastUpdatedAt": _iso(row["updated_at"]),
        "ttl": None,  # kept as long as the hub keeps finished tasks
        "pollInterval": POLL_INTERVAL_MS,
    }
    return fields | ({"statusMessage": message} if message else {})


def _status(row: dict[str, Any]) -> tuple[str, str | None]:
    stored = row["result"] or {}
    if row["status"] in ("pending", "in_progress"):
        return ("input_required", "waiting for answers to its input requests") if stored.get("input") else ("working", None)
    if row["status"] == "cancelled":
        return "cancelled", None
    if "error" in stored:
        return "failed", f"{stored['error']['code']}: {stored['error']['message']}"
    if row["status"] == "completed":
        output = stored.get("output") or {}
        failed = output.get("isError") or output.get("is_error")
        return ("failed", "the tool answered with an error") if failed else ("completed", None)
    return "failed", LOST if row["last_error"] == "lease expired" else row["last_error"] or "the call failed"


class LegacyTasks:
    """The 2025-11-25 handlers and the middleware that starts task-augmented calls."""

    def __init__(self, tasks: McpTasks, start: Starter):
        self.tasks = tasks
        self.start = start  # starts a task-augmented call of the tool named in the params: the task's row
        self._watching: set[asyncio.Task[None]] = set()

    async def __call__(self, ctx: Context, call_next: Callable[[Context], Awaitable[Any]]) -> Any:
        if ctx.method == "initialize":
            answer = await call_next(ctx)
            if isinstance(answer, dict) and answer.get("protocolVersion") == REVISION:
                answer["capabilities"] = {**answer.get("capabilities", {}), "tasks": CAPABILITY}
            return answer
        params = ctx.params
        if ctx.method == "tools/call" and ctx.protocol_version == REVISION and isinstance(params, Mapping) and params.get("task") is not None:
            methods.validate_client_request("tools/call", REVISION, params)
            row = await self.start(ctx, types.CallToolRequestParams.model_validate(params, by_name=False))
            self._watch(ctx, row["task_id"])
            return {"task": task_fields(row)}
        return await call_next(ctx)

    async def get(self, ctx: Context, params: types.GetTaskRequestParams) -> dict[str, Any]:
        fields = task_fields(row := await self.tasks.task(ctx, params.task_id))
        if fields["status"] == "working" and (said := await self.tasks.said(ctx, row)):
            fields["statusMessage"] = said
        return fields

    async def cancel(self, ctx: Context, params: types.CancelTaskRequestParams) -> dict[str, Any]:
        row = await self.tasks.task(ctx, params.task_id)
        if row["status"] not in TERMINAL:
            hub, principal, _ = self.tasks.caller(ctx)
            with contextlib.suppress(Conflict):  # it ended meanwhile: its state says how
                await hub.catalog.call(hub, principal, "agora.task.cancel", {"task_id": row["task_id"]}, new_id("req"))
            row = await self.tasks.task(ctx, params.task_id)
            if row["status"] == "cancelled":
                return task_fields(row)
        raise MCPError(types.INVALID_PARAMS, f"cannot cancel task '{params.task_id}': it already ended ({task_fields(row)['status']})")

    async def result(self, ctx: Context, params: types.GetTaskPayloadRequestParams) -> dict[str, Any]:
        """The call's own result once the task ended (waiting for it); its JSON-RPC error if it could not run."""
        row = await self._ended(ctx, params.task_id)
        related = {RELATED: {"taskId": row["task_id"]}}
        stored = row["result"] or {}
        if row["status"] == "cancelled":
            raise MCPError(types.INVALID_PARAMS, f"task '{row['task_id']}' was cancelled: it has no result", data=related)
        if "output" in stored or "error" in stored:
            answer = self.tasks.result_of(stored)
            return {**answer, "_meta": {**answer.get("_meta", {}), **related}}
        raise MCPError(types.INTERNAL_ERROR, task_fields(row).get("statusMessage", "the call failed"), data=related)

    async def list_tasks(self, ctx: Context, params: types.PaginatedRequestParams | None) -> dict[str, Any]:
        """The caller's own task-augmented calls, newest first (a page may hold fewer than it could: another caller's
        tasks of the same tenant are skipped)."""
        hub, principal, _ = self.tasks.caller(ctx)
        query: dict[str, Any] = {"task_type": "tool.call", "limit": LIST_PAGE}
        if params is not None and params.cursor:
            query["cursor"] = params.cursor
        try:
            _, page, _ = await hub.catalog.call(hub, principal, "agora.task.list", query, new_id("req"))
        except AgoraError as exc:
            raise MCPError(types.INVALID_PARAMS, exc.message) from None
        rows = [t.model_dump(mode="json") for t in page.tasks]
        answer: dict[str, Any] = {"tasks": [task_fields(r) for r in rows if r["created_by"] == principal.label]}
        return answer | ({"nextCursor": page.next_cursor} if page.next_cursor else {})

    async def _ended(self, ctx: Context, task_id: str) -> dict[str, Any]:
        wakeups = self.tasks.caller(ctx)[0].wakeups
        return await wakeups.until([f"task:{task_id}"], lambda: self.tasks.task(ctx, task_id), lambda row: row["status"] in TERMINAL, RECHECK_SECONDS)

    def _watch(self, ctx: Context, task_id: str) -> None:
        """Tell the session's stream when the task ends (best effort: a session gone or a full watch list, and the
        client polls as it would anyway)."""
        if ctx.request is None or not ctx.request.headers.get("mcp-session-id") or len(self._watching) >= MAX_WATCHED:
            return
        task = asyncio.get_running_loop().create_task(self._notify_end(ctx, task_id), name=f"mcp-task-status-{task_id}")
        self._watching.add(task)
        task.add_done_callback(self._watching.discard)

    async def _notify_end(self, ctx: Context, task_id: str) -> None:
        try:
            with anyio.fail_after(WATCH_SECONDS):
                row = await self._ended(ctx, task_id)
                params = types.TaskStatusNotificationParams.model_validate(task_fields(row), by_name=False)
                await ctx.session.send_notification(types.TaskStatusNotification(params=params))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001 - the session closed, or the task outlived the watch
            log.debug("no status notification for MCP task %s", task_id)

    async def close(self) -> None:
        for task in list(self._watching):
            task.cancel()
        await asyncio.gather(*self._watching, return_exceptions=True)
