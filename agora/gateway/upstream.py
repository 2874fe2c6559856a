"""One external MCP server: a supervised client connection, its tool list, and calls with a timeout.

The hub is an ordinary MCP client here (official ``mcp`` SDK). A supervisor task keeps the connection: it lists
the server's tools, re-lists them every ``refresh_seconds`` and at once when the server announces a change
(``notifications/tools/list_changed`` on a 2025-11-25 session, a ``subscriptions/listen`` stream on 2026-07-28),
and when the connection fails it marks the server ``down`` (its tools answer 503) and reconnects with capped backoff. The
hub's own credentials for the server (headers, bearer token, stdio env) are used; a caller's token never is.

Every connection to a URL server goes through the egress policy of whoever registered it (``agora/core/egress.py``).
Why a URL server could not be reached is logged, never shown: callers get the same words whatever happened, so the
gateway cannot be used to tell a closed port from an open one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from agora.core import progress
from agora.core.egress import Egress, EgressPolicy, display, unreachable
from agora.core.exception_groups import innermost
from agora_sdk.errors import Unavailable
from agora_sdk.wire.gateway import Transport, UpstreamState

from .direct import CLIENT_INFO, DirectCalls, MisroutedCall

log = logging.getLogger("agora.gateway")

BACKOFF_BASE, BACKOFF_CAP = 0.25, 10.0
# What a call meets when the server's connection is gone (a crashed process, a closed port) before the supervisor saw it.
CONNECTION_LOST = (httpx2.TransportError, anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, ConnectionError)


class Upstream:
    def __init__(
        self, row: dict[str, Any], on_tools_changed: Callable[[], None], refresh_seconds: float = 5.0, egress: Egress | None = None
    ):
        self.row = row
        self.egress = egress or EgressPolicy().acting_for(admin=False)
        self.refresh_seconds = refresh_seconds  # tool list refresh and liveness check when no change is announced
        self.name: str = row["name"]
        self.timeout: float = row["timeout_seconds"]
        self.state = UpstreamState.connecting
        self.tools: dict[str, types.Tool] = {}  # upstream tool name -> its listing
        self.last_error: str | None = None
        self.connected_at: datetime | None = None
        self._next_attempt = 0.0  # loop time of the next connection attempt while down
        self._client: Client | None = None
        self._direct: DirectCalls | None = None  # calls sent without the SDK client, to a stateless server
        self._changed = asyncio.Event()
        self._on_tools_changed = on_tools_changed
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"mcp-upstream-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_settled(self, timeout: float) -> None:
        """Until the first connection attempt has succeeded or failed (registration reports either)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.state is UpstreamState.connecting:
                    await asyncio.sleep(0.02)

    # -- the connection -------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[Client]:
        row, secrets = self.row, self.row["secrets"]
        if row["transport"] == Transport.stdio:
            env = {"PATH": os.environ.get("PATH", ""), **secrets.get("env", {})}
            params = StdioServerParameters(command=row["command"], args=row["args"], env=env)
            async with Client(params, message_handler=self._on_message) as client:
                yield client
            return
        headers = dict(secrets.get("headers", {}))
        if secrets.get("bearer_token"):
            headers["Authorization"] = f"Bearer {secrets['bearer_token']}"
        async with self.egress.client(httpx2, headers=headers, timeout=max(self.timeout, 30.0)) as http:
            async with Client(
                streamable_http_client(row["url"], http_client=http), message_handler=self._on_message, client_info=types.Implementation(**CLIENT_INFO)
            ) as client:
                if client.protocol_version in MODERN_PROTOCOL_VERSIONS:  # stateless: a call can go straight on the pool
                    self._direct = DirectCalls(row["url"], http, client.protocol_version, {})
                try:
                    yield client
                finally:
                    self._direct = None

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._changed.set()

    async def _supervise(self) -> None:
        attempt = 0
        while True:
            detail = "the connection ended"
            try:
                async with self._connect() as client:
                    await self._refresh(client)
                    self._client, self.state, self.last_error = client, UpstreamState.up, None
                    self.connected_at = datetime.now(timezone.utc)
                    self._on_tools_changed()  # listed as available again
                    log.info("mcp server %s up with %d tools", self.name, len(self.tools))
                    attempt = 0
                    await self._keep(client)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:  # noqa: BLE001 - any failure of the upstream is reported and retried
                detail = f"{type(innermost(exc)).__name__}: {innermost(exc)}"[:500]
                self.last_error = detail if self.row["transport"] == Transport.stdio else unreachable(self.row["url"], "an MCP server")
            was_up = self.state is UpstreamState.up
            self._client, self.state = None, UpstreamState.down
            if was_up:
                log.warning("mcp server %s (%s) down: %s", self.name, self._where, detail)
                self._on_tools_changed()  # its tools are now listed as unavailable
            else:
                log.log(logging.INFO if attempt == 0 else logging.DEBUG, "mcp server %s (%s) not reached: %s", self.name, self._where, detail)
            backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
            self._next_attempt = asyncio.get_running_loop().time() + backoff
            await asyncio.sleep(backoff)
            attempt += 1

    @property
    def _where(self) -> str:
        return display(self.row["url"]) if self.row["url"] else self.row["command"]

    async def _keep(self, client: Client) -> None:
        """Re-list tools when a change is announced or every ``refresh_seconds``; a failure ends the connection."""
        async with anyio.create_task_group() as group:
            tools = client.server_capabilities.tools
            if client.protocol_version in MODERN_PROTOCOL_VERSIONS and tools is not None and tools.list_changed:
                group.start_soon(self._listen, client)
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.refresh_seconds):
                        await self._changed.wait()
                self._changed.clear()
                if await self._refresh(client):
                    self._on_tools_changed()

    async def _listen(self, client: Client) -> None:
        """A 2026-07-28 server announces changes on a listen stream; losing it abruptly ends the connection."""
        async with client.listen(tools_list_changed=True) as subscription:
            async for _change in subscription:
                self._changed.set()

    async def _refresh(self, client: Client) -> bool:
        """Re-read the server's tool list; True if it changed."""
        listed: dict[str, types.Tool] = {}
        cursor: str | None = None
        with anyio.fail_after(self.timeout):
            while True:
                page = await client.list_tools(cursor=cursor, cache_mode="bypass")
                listed.update((tool.name, tool) for tool in page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        changed = listed != self.tools
        self.tools = listed
        return changed

    # -- calls ----------------------------------------------------------------------------------------------

    def down(self) -> Unavailable:
        """The one answer to every call while the server is down, saying when the hub tries it again."""
        wait = max(1.0, self._next_attempt - asyncio.get_running_loop().time())
        return Unavailable(
            f"MCP server '{self.name}' is down; its tools come back when it does",
            details={"reason": "upstream_down", "server": self.name, "last_error": self.last_error, "retry_after_seconds": round(wait, 3)},
        )

    def _lost(self, tool: str, cause: BaseException) -> Unavailable:
        """The connection is gone (a crashed process, a closed port) and the supervisor has not seen it yet: the answer
        of a server that is down, and the supervisor looks now."""
        log.info("mcp server %s (%s): %s failed: %s: %s", self.name, self._where, tool, type(cause).__name__, cause)
        if self.last_error is None:
            self.last_error = "its process ended" if self.row["transport"] == Transport.stdio else unreachable(self.row["url"], "an MCP server")
        self._changed.set()
        return self.down()

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call ``tool`` upstream, relaying its progress to the caller's door; cancelling the call cancels it upstream
        (the SDK client sends ``notifications/cancelled``, or on 2026-07-28 closes the request's stream). A call to a
        stateless server whose caller wants no progress goes straight on the HTTP pool (``direct.py``)."""
        client = self._client
        if client is None or self.state is not UpstreamState.up:
            raise self.down()
        relay, direct, listing = progress.reporter.get(), self._direct, self.tools.get(tool)
        try:
            with anyio.fail_after(self.timeout):
                if direct is not None and relay is None and listing is not None and direct.takes(listing):
                    with contextlib.suppress(MisroutedCall):
                        return await direct.call(listing, arguments)
                return await client.call_tool(tool, arguments, progress_callback=relay)
        except TimeoutError:
            raise Unavailable(
                f"MCP server '{self.name}' did not answer {tool} within {self.timeout:g} s",
                details={"reason": "upstream_timeout", "server": self.name},
                status=504,
            ) from None
        except MCPError as exc:
            if exc.error.code == types.CONNECTION_CLOSED:
                raise self._lost(tool, exc) from None
            raise Unavailable(
                f"MCP server '{self.name}' refused {tool}: {exc.error.message}",
                details={"reason": "upstream_error", "server": self.name, "code": exc.error.code},
                status=502,
            ) from None
        except Exception as exc:  # noqa: BLE001 - a broken or lying upstream must not become a 500 here
            cause = innermost(exc)
            if isinstance(cause, CONNECTION_LOST):
                raise self._lost(tool, cause) from None
            raise Unavailable(
                f"MCP server '{self.name}' answered {tool} with something unusable: {cause}",
                details={"reason": "upstream_error", "server": self.name},
                status=502,
            ) from None
