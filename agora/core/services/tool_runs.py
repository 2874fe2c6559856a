"""Tool calls run in the background, each recorded as an Agora task of type ``tool.call``: ``agora.tools.start``,
and MCP's task-augmented ``tools/call`` (``transports/mcp/tasks.py``).

The task is stored in progress before the call starts, with a lease this replica renews while the call runs, so the
record is durable from the first moment: ``agora.task.get`` reads it on any replica, and ``agora.task.cancel`` stops
it (the running replica parks on the task's wake key and cancels the call). The outcome is written when the call
ends: completed with ``{"name", "output"}``; failed with ``{"name", "error"}`` (the tool's own error, code and
message) or, for anything else, with the reason alone. A hub that stops mid-call lets the lease run out and the
expiry job buries the task with "lease expired" (one attempt of one): a call is never run twice on its own.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from agora.bus import Event
from agora.core import progress
from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.events import announce
from agora.core.services import task_output
from agora.core.services.tasks import new_task_row, record_transitions
from agora.store.ops import task_output as output_ops
from agora.store.ops import tasks as task_ops
from agora.store.ops import tool_runs as run_ops
from agora_sdk.errors import AgoraError, Conflict

log = logging.getLogger("agora.tool_runs")

TASK_TYPE = run_ops.TASK_TYPE
LEASE = timedelta(seconds=15)  # how soon a call lost with its replica is known to be lost
RENEW_SECONDS = 5.0
CANCEL_RECHECK = 5.0  # a cancellation whose wake-up was lost between replicas is seen this late at most

Run = Callable[["RunContext"], Awaitable[dict[str, Any]]]


class RunContext:
    """What a running call may do besides return: ask its caller for input and wait for the answers."""

    def __init__(self, runs: ToolRuns, task_id: str, token: str):
        self.runs, self.task_id, self.token = runs, task_id, token

    async def ask(self, requests: dict[str, Any]) -> dict[str, Any]:
        """Park the task as waiting for input (``requests``: key -> the MCP request to answer) until every key has
        an answer (``ToolRuns.answer``); the answers, by key."""
        hub = self.runs.hub
        now = hub.clock.now()
        await self._record(lambda conn: run_ops.ask(conn, self.task_id, self.token, requests, now), now)

        def waiting(task: dict[str, Any]) -> dict[str, Any]:
            return (task["result"] or {}).get("input") or {}

        def answered(task: dict[str, Any]) -> bool:
            return bool(waiting(task)) and waiting(task)["responses"].keys() >= waiting(task)["requests"].keys()

        task = await hub.wakeups.until([f"task:{self.task_id}"], lambda: hub.store.read(task_ops.get, self.task_id, None), answered, CANCEL_RECHECK)
        return dict(waiting(task)["responses"])

    async def _record(self, change: Callable[[Any], dict[str, Any]], now: Any) -> None:
        hub = self.runs.hub
        await announce(hub, await hub.store.write(lambda conn: record_transitions(conn, [change(conn)], now)))


class ToolRuns:
    """This replica's background calls, by task id."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.running: dict[str, asyncio.Task[None]] = {}

    async def start(self, principal: Principal, name: str, arguments: dict[str, Any], run: Run) -> dict[str, Any]:
        """Record the call as a running task, start ``run`` and return the task; ``run`` returns the output's JSON."""
        now = self.hub.clock.now()
        token = secrets.token_hex(16)
        row = new_task_row(
            principal.tenant_id, TASK_TYPE, {"name": name, "arguments": arguments}, principal.label, now,
            status="in_progress", attempts=1, max_attempts=1, lease_token=token, fencing_token=1,
            lease_expires_at=now + LEASE, started_at=now,
        )  # fmt: skip

        def op(conn: Any) -> tuple[dict[str, Any], list[Any]]:
            started = run_ops.start(conn, row, principal.label)
            return row, record_transitions(conn, [started], now)

        task, events = await self.hub.store.write(op)
        await announce(self.hub, events)
        self.running[task["task_id"]] = asyncio.create_task(
            self._run(task["task_id"], principal.tenant_id, token, name, run), name=f"tool-run-{task['task_id']}"
        )
        return task

    async def answer(self, principal: Principal, task_id: str, responses: dict[str, Any]) -> None:
        """The caller's answers to what the running call ``task_id`` asked (any replica; the running one wakes)."""
        now = self.hub.clock.now()

        def op(conn: Any) -> list[Any]:
            return record_transitions(conn, run_ops.answer(conn, task_id, principal.tenant_scope(), responses, now), now)

        await announce(self.hub, await self.hub.store.write(op))

    async def stop(self) -> None:
        """The hub is stopping: its calls end here (their leases run out, and their tasks are buried)."""
        for running in self.running.values():
            running.cancel()
        await asyncio.gather(*self.running.values(), return_exceptions=True)

    async def _run(self, task_id: str, tenant_id: str, token: str, name: str, run: Run) -> None:
        progress.reporter.set(self._recorder(task_id, tenant_id, token))  # (the call's task copies this context)
        call = asyncio.create_task(run(RunContext(self, task_id, token)))
        watch = asyncio.create_task(self._keep(task_id, token))
        try:
            await asyncio.wait({call, watch}, return_when=asyncio.FIRST_COMPLETED)
            if not call.done():  # cancelled here, or the task is no longer this run's
                call.cancel()
                await asyncio.gather(call, return_exceptions=True)
                return
            try:
                outcome: tuple[str, dict[str, Any] | None, str | None] = ("completed", {"name": name, "output": call.result()}, None)
            except AgoraError as exc:
                outcome = ("failed", {"name": name, "error": exc.to_body()["error"]}, f"{exc.code}: {exc.message}")
            except Exception as exc:  # noqa: BLE001 - whatever broke the call is its outcome, not the hub's failure
                log.exception("tool run %s (%s) failed", task_id, name)
                outcome = ("failed", None, f"{type(exc).__name__}: {exc}"[:4000])
            await self._finish(task_id, token, *outcome)
        finally:
            for side in (call, watch):
                side.cancel()
            await asyncio.gather(call, watch, return_exceptions=True)
            self.running.pop(task_id, None)

    def _recorder(self, task_id: str, tenant_id: str, token: str) -> progress.Reporter:
        """The call's progress messages (an upstream's, a task's output it waits on) become the run's own output, a
        line each: a watcher of the run sees them, and MCP's tasks/get shows the last as the status message."""

        async def record(_done: float, _total: float | None, message: str | None) -> None:
            if not message:
                return
            hub = self.hub
            line = [{"text": message.rstrip("\n") + "\n"}]
            try:
                await hub.store.write(output_ops.append, task_id, tenant_id, None, token, line, hub.settings.task_output_chunks, hub.clock.now())
            except Conflict:  # cancelled or buried meanwhile: the call is about to be stopped, its progress goes nowhere
                return
            await hub.notifier.publish(Event(task_output.EVENT, tenant_id, {"task_id": task_id}))

        return record

    async def _finish(self, task_id: str, token: str, status: str, result: dict[str, Any] | None, error: str | None) -> None:
        now = self.hub.clock.now()

        def op(conn: Any) -> list[Any]:
            return record_transitions(conn, [run_ops.finish(conn, task_id, token, status, result, error, now)], now)

        try:
            await announce(self.hub, await self.hub.store.write(op))
        except AgoraError as exc:  # cancelled or buried meanwhile: that is its outcome
            log.info("tool run %s ended after its task moved on: %s", task_id, exc.message)

    async def _keep(self, task_id: str, token: str) -> None:
        """Renew the lease while the call runs; return when the task is no longer this run's (cancelled, buried)."""
        loop = asyncio.get_running_loop()
        renew_at = loop.time() + RENEW_SECONDS
        while True:
            with self.hub.wakeups.armed([f"task:{task_id}"]) as woken:
                task = await self.hub.store.read(task_ops.get, task_id, None)
                if task["status"] != "in_progress" or task["lease_token"] != token:
                    return
                if loop.time() >= renew_at:
                    now = self.hub.clock.now()
                    if not await self.hub.store.write(run_ops.renew, task_id, token, now + LEASE, now):
                        return
                    renew_at = loop.time() + RENEW_SECONDS
                await woken.wait(min(CANCEL_RECHECK, max(0.0, renew_at - loop.time())))
