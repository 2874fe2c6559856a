"""The MCP gateway: external MCP servers whose tools join the catalog as ``ext.<server>.<tool>``.

The ``mcp_servers`` table is the truth; every hub replica keeps one supervised connection per registered server
(``upstream.Upstream``) and re-reads the table every ``refresh_seconds`` so a registration made on another replica
arrives there too. Imported tools are ordinary ``Tool`` objects (schema from the upstream, handler calling it), so
``Catalog.call`` authorises, logs and times them like any other tool, over REST, MCP and the SDK alike. A server
registered for a tenant is seen only by that tenant (and the admin); one registered without a tenant, by all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agora.catalog.tool import EXT_NAME_RE, EXT_PREFIX, Tool
from agora.core.auth import Principal, Scope, is_admin_label
from agora.core.context import CallContext
from agora.core.egress import EgressPolicy
from agora.store import Store
from agora.store.ops import mcp_servers as server_ops
from agora.store.ops import search as search_ops
from agora.store.search_documents import imported_tool_document
from agora_sdk.errors import NotFound, Unavailable
from agora_sdk.wire.common import ToolStatus
from agora_sdk.wire.gateway import ExtArguments, ExtResult, McpServer, UpstreamState

from .upstream import Upstream

log = logging.getLogger("agora.gateway")

CALL = frozenset({Scope.tools_call.value})


class McpGateway:
    def __init__(
        self, store: Store, refresh_seconds: float = 5.0, egress: EgressPolicy | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):  # fmt: skip
        self.store = store
        self.refresh_seconds = refresh_seconds
        self.egress = egress or EgressPolicy()
        self.now = now
        self.upstreams: dict[str, Upstream] = {}
        self._tools: dict[str, list[Tool]] = {}  # server name -> its imported tools
        self._watchers: list[Callable[[str | None], None]] = []
        self._sync: asyncio.Task[None] | None = None
        self._indexing: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Connect the registered servers. A database too slow to answer at once does not stop the hub from
        starting: the servers are connected at the next refresh."""
        try:
            await self.sync()
        except Unavailable:
            log.warning("the registered MCP servers could not be read at start; they are connected at the next refresh")
        self._sync = asyncio.create_task(self._sync_forever(), name="mcp-gateway-sync")

    def watch(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(tenant_id)`` whenever the imported tools a tenant sees change (None: every tenant's)."""
        self._watchers.append(callback)

    def _changed(self, tenant_id: str | None) -> None:
        for callback in self._watchers:
            callback(tenant_id)

    async def stop(self) -> None:
        if self._sync is not None:
            self._sync.cancel()
            await asyncio.gather(self._sync, return_exceptions=True)
        await asyncio.gather(*(u.stop() for u in self.upstreams.values()))
        self.upstreams.clear()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.sync()
            except Exception:  # noqa: BLE001 - a failed read is retried at the next tick
                log.exception("mcp gateway sync failed")

    async def sync(self) -> None:
        """Connect servers registered since the last look; drop removed ones."""
        rows = {row["name"]: row for row in await self.store.read(server_ops.all_servers)}
        for name in self.upstreams.keys() - rows.keys():
            await self.drop(name)
        for name in rows.keys() - self.upstreams.keys():
            self.connect(rows[name])

    def connect(self, row: dict[str, Any]) -> Upstream:
        upstream = self.trial(row)
        self.upstreams[row["name"]] = upstream
        return upstream

    def trial(self, row: dict[str, Any]) -> Upstream:
        """A connection to a server, started but not serving (``adopt`` makes it serve): registration tries first.
        It reaches what the egress policy lets the one who registered the server reach."""
        egress = self.egress.acting_for(admin=is_admin_label(row["created_by"]))
        upstream = Upstream(row, lambda: self._rebuild(row["name"]), self.refresh_seconds, egress)
        upstream.start()
        return upstream

    async def adopt(self, upstream: Upstream) -> Upstream:
        """A tried connection whose server is now stored serves; unless the table sync connected it meanwhile."""
        serving = self.upstreams.get(upstream.name)
        if serving is not None:
            await upstream.stop()
            return serving
        self.upstreams[upstream.name] = upstream
        self._rebuild(upstream.name)
        return upstream

    async def drop(self, name: str) -> None:
        upstream = self.upstreams.pop(name, None)
        if upstream is not None:
            await upstream.stop()
            self._tools.pop(name, None)
            self._changed(upstream.row["tenant_id"])
            self._index(name, None)

    # -- what a caller sees ---------------------------------------------------------------------------------

    def visible(self, principal: Principal) -> list[Upstream]:
        return self.visible_to(principal.tenant_scope())

    def visible_to(self, tenant_scope: str | None) -> list[Upstream]:
        """Servers a tenant sees (its own and the shared ones); every server for None (the admin)."""
        return [u for u in self.upstreams.values() if sees(tenant_scope, u.row["tenant_id"])]

    def tools_for(self, principal: Principal) -> list[Tool]:
        return self.tools_of(principal.tenant_scope())

    def tools_of(self, tenant_scope: str | None) -> list[Tool]:
        return [tool for u in self.visible_to(tenant_scope) for tool in self._tools.get(u.name, [])]

    def tool(self, principal: Principal, name: str) -> Tool:
        found = next((t for t in self.tools_for(principal) if t.name == name), None)
        if found is None:
            raise NotFound(f"unknown tool '{name}'; agora.discovery.list lists the tools", details={"tool": name})
        return found

    def describe(self, upstream: Upstream) -> McpServer:
        row = upstream.row
        return McpServer(
            server_id=row["server_id"],
            name=row["name"],
            tenant_id=row["tenant_id"],
            transport=row["transport"],
            url=row["url"],
            command=row["command"],
            args=row["args"],
            state=upstream.state,
            tools=[t.name for t in self._tools.get(upstream.name, [])],
            last_error=upstream.last_error,
            connected_at=upstream.connected_at,
            registered_at=row["created_at"],
        )

    # -- imported tools -------------------------------------------------------------------------------------

    def _rebuild(self, name: str) -> None:
        upstream = self.upstreams.get(name)
        if upstream is None:
            return
        status = ToolStatus.active if upstream.state is UpstreamState.up else ToolStatus.unavailable
        self._tools[name] = [_imported(upstream, listing, status) for listing in upstream.tools.values() if ext_name(name, listing.name)]
        self._changed(upstream.row["tenant_id"])
        self._index(name, upstream.row["tenant_id"])

    def _index(self, name: str, tenant_id: str | None) -> None:
        """Bring the search's documents of a server's tools in line with what it serves now (its tools, or none once
        it is dropped). Every replica writes the same documents: the writes are idempotent."""
        tools = self._tools.get(name, [])
        documents = [imported_tool_document(name, tenant_id, t.name, t.description, self.now()) for t in tools]

        async def write() -> None:
            try:
                await self.store.write(search_ops.replace_imported, name, documents)
            except Exception:  # noqa: BLE001 - the next change of the server's tools writes them again
                log.warning("indexing the tools of MCP server %s for search failed", name, exc_info=True)

        task = asyncio.get_running_loop().create_task(write())
        self._indexing.add(task)
        task.add_done_callback(self._indexing.discard)


def sees(tenant_scope: str | None, tenant_id: str | None) -> bool:
    """Whether a caller of ``tenant_scope`` (None: the admin) sees a server of ``tenant_id`` (None: shared by all)."""
    return tenant_scope is None or tenant_id is None or tenant_id == tenant_scope


def ext_name(server: str, tool: str) -> str | None:
    """``ext.<server>.<tool>``, or None for an upstream tool name that cannot be one (it is not imported)."""
    name = f"{EXT_PREFIX}{server}.{tool}"
    return name if EXT_NAME_RE.match(name) else None


def _imported(upstream: Upstream, listing: Any, status: ToolStatus) -> Tool:
    async def handler(_ctx: CallContext, request: ExtArguments) -> ExtResult:
        result = await upstream.call(listing.name, dict(request.model_extra or {}))
        content = [block.model_dump(mode="json", by_alias=True, exclude_none=True) for block in result.content]
        return ExtResult(content=content, structured_content=result.structured_content, is_error=result.is_error)

    hints = listing.annotations
    return Tool(
        name=f"{EXT_PREFIX}{upstream.name}.{listing.name}",
        version="1.0.0",
        description=listing.description or f"{listing.name} from the MCP server '{upstream.name}'",
        input_model=ExtArguments,
        output_model=ExtResult,
        handler=handler,
        scopes=CALL,
        read_only=bool(hints and hints.read_only_hint),
        status=status,
        schema_override=dict(listing.input_schema),
    )


__all__ = ["McpGateway", "Upstream", "sees"]

