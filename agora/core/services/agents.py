"""Agents: register (idempotent by name within a tenant), presence, lookup, search."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.auth import (
    DEFAULT_SCOPES,
    PrincipalKind,
    display_prefix,
    generate_key,
    hash_key,
)
from agora.core.context import CallContext, Hub
from agora.core.events import announce, record
from agora.core.services import a2a_bridge
from agora.core.services.acting import tenant_in_scope
from agora.store.ops import agents as agent_ops
from agora.store.ops import keys as key_ops
from agora.store.ops import messages as message_ops
from agora_sdk.errors import InvalidArgument, NotFound, PermissionDenied
from agora_sdk.wire.agents import (
    Agent,
    AgentList,
    AgentSort,
    AgentLookup,
    GetAgent,
    Deregistered,
    Heartbeat,
    HeartbeatAck,
    ListAgents,
    MarketplaceQuery,
    MarketplaceStats,
    QueryAgents,
    RegisterAgent,
    RegisterCapability,
    Registration,
    ServiceSummary,
    UpdateAgent,
)
from agora_sdk.wire.search import SearchKind


def register_in(
    conn: Connection,
    tenant_id: str,
    fields: dict[str, Any],
    now: datetime,
    acting_agent_id: str | None,
    token: str | None,
    token_scopes: list[str],
    created_by: str,
) -> tuple[dict[str, Any], bool]:
    row, created = agent_ops.upsert(conn, tenant_id, fields, now, acting_agent_id)
    public = Agent.model_validate(row).model_dump(mode="json")
    record(conn, tenant_id, "agent_registered" if created else "agent_updated", public, now)
    if token is not None:
        key_ops.insert_key(
            conn,
            key_hash=hash_key(token),
            prefix=display_prefix(token),
            kind=PrincipalKind.agent.value,
            name=f"agent token for {row['agent_name']}",
            tenant_id=tenant_id,
            agent_id=row["agent_id"],
            scopes=token_scopes,
            created_by=created_by,
            now=now,
        )
    return row, created


def stored_fields(req: RegisterAgent) -> dict[str, Any]:
    """The agent's columns as a registration sets them (a remote A2A agent's are filled in by ``register``)."""
    fields = req.model_dump(mode="json", exclude={"manifest", "a2a", "a2a_card_url", "a2a_token"})
    fields["manifest"] = req.manifest.model_dump(mode="json", exclude_none=True) if req.manifest else None
    fields["a2a"] = req.a2a.model_dump(mode="json") if req.a2a else None
    fields["a2a_remote"], fields["a2a_token"], fields["a2a_card_url"] = None, None, None
    return fields


async def register(ctx: CallContext, req: RegisterAgent) -> Registration:
    p = ctx.principal
    acting = p.agent_id if p.kind is PrincipalKind.agent else None
    token = None if acting else generate_key()  # an agent re-registering itself already holds its token
    fields = stored_fields(req)
    if req.a2a_card_url is not None:  # a remote A2A agent: its card now (a clear error if it cannot be had)
        remote = await a2a_bridge.remote_profile(ctx.hub.egress.acting_for(p.is_admin), req.a2a_card_url, req.a2a_token, ctx.clock.now())
        remote["set_by_admin"] = p.is_admin  # the bridge's calls to it reach what this caller may reach
        fields["a2a_remote"], fields["a2a_token"], fields["a2a_card_url"] = remote, req.a2a_token, req.a2a_card_url
        fields["capabilities"] = fields["capabilities"] or a2a_bridge.capabilities_of(remote["card"])
        fields["description"] = fields["description"] or remote["card"].get("description", "")
    # The agent's token never carries more than the key that registered it.
    token_scopes = sorted(DEFAULT_SCOPES if p.is_admin else DEFAULT_SCOPES & p.scopes)
    row, created = await ctx.store.write(
        register_in, p.tenant_id, fields, ctx.clock.now(), acting, token, token_scopes, p.label
    )
    agent = Agent.model_validate(row)
    await ctx.notifier.publish(Event("agent_registered" if created else "agent_updated", agent.tenant_id))
    return Registration(
        agent_id=agent.agent_id,
        agent_name=agent.agent_name,
        status="registered" if created else "updated",
        agent_token=token,
        agent=agent,
        available_services=ctx.hub.services + _imported_services(ctx, agent.tenant_id),
    )


def _imported_services(ctx: CallContext, tenant_id: str) -> list[ServiceSummary]:
    """The tools of external MCP servers (the gateway) the agent's tenant sees."""
    tools = ctx.hub.gateway.tools_of(tenant_id) if ctx.hub.gateway else []
    return [ServiceSummary(name=t.name, version=t.version, status=t.status.value) for t in tools]


async def register_capability(ctx: CallContext, req: RegisterCapability) -> Registration:
    """v4 compatibility: add one capability to the agent named ``agent_id``, creating it if needed."""
    try:
        existing = await ctx.store.read(agent_ops.resolve, ctx.principal.tenant_id, req.agent_id)
    except NotFound:
        existing = None
    capabilities = list(dict.fromkeys([*(existing["capabilities"] if existing else []), req.capability_type]))
    metadata = dict(existing["metadata"]) if existing else {}
    metadata.setdefault("proficiency", {})[req.capability_type] = req.proficiency
    metadata["max_concurrent_tasks"] = req.max_tasks
    return await register(
        ctx,
        RegisterAgent(
            agent_name=req.agent_id,
            capabilities=capabilities,
            service_tier=existing["service_tier"] if existing else "basic",
            description=existing["description"] if existing else "",
            metadata=metadata,
        ),
    )


async def _controlled_agent(ctx: CallContext, ref: str | None) -> dict[str, Any]:
    """The agent a write targets: visible to the caller, and the caller itself when it is an agent."""
    p = ctx.principal
    ref = ref or p.agent_id
    if ref is None:
        raise InvalidArgument("name the agent ('agent'): this key does not belong to an agent", details={"field": "agent"})
    row = await ctx.store.read(agent_ops.resolve, p.tenant_scope(), ref)
    if p.kind is PrincipalKind.agent and row["agent_id"] != p.agent_id:
        raise PermissionDenied("an agent acts only as itself", details={"agent": ref})
    return row


INBOX_DEPTH_LIMIT = 10_000  # counted that far: a deeper inbox costs no more to describe


async def get(ctx: CallContext, req: GetAgent) -> Agent:
    scope = ctx.principal.tenant_scope()
    if not req.include_counts:
        return Agent.model_validate(await ctx.store.read(agent_ops.resolve, scope, req.agent))

    def op(conn: Connection) -> dict[str, Any]:
        row = agent_ops.resolve(conn, scope, req.agent)
        load = agent_ops.loads(conn, [row["agent_id"]]).get(row["agent_id"], 0)
        return {**row, "load": load, "inbox_depth": message_ops.inbox_depth(conn, row["agent_id"], INBOX_DEPTH_LIMIT)}

    return Agent.model_validate(await ctx.store.read(op))


async def list_agents(ctx: CallContext, req: ListAgents) -> AgentList:
    return await query(ctx, QueryAgents(status=req.status, limit=req.limit, cursor=req.cursor))


async def query(ctx: CallContext, req: QueryAgents) -> AgentList:
    scope = await tenant_in_scope(ctx, req.tenant)
    if req.q is not None:
        return await _query_ranked(ctx, req, scope)

    def op(conn: Connection) -> tuple[list[dict[str, Any]], str | None]:
        rows, next_cursor = agent_ops.query(
            conn,
            scope,
            all_of=req.capabilities,
            any_of=req.any_capabilities,
            status=req.status,
            service_tier=req.service_tier,
            text=req.text,
            limit=req.limit,
            cursor=req.cursor,
            sort=req.sort.value,
            min_rating=req.min_rating,
            min_reputation=req.min_reputation,
        )
        return _with_figures(conn, rows, req.include_load), next_cursor

    rows, next_cursor = await ctx.store.read(op)
    return AgentList(agents=[Agent.model_validate(r) for r in rows], count=len(rows), next_cursor=next_cursor)


def _with_figures(conn: Connection, rows: list[dict[str, Any]], include_load: bool) -> list[dict[str, Any]]:
    """The page's agents with the listing each marketplace agent runs (its rating and reputation) and, when asked,
    its load: a statement each for the whole page."""
    ids = [r["agent_id"] for r in rows]
    listings = agent_ops.standing(conn, ids)
    loads = agent_ops.loads(conn, ids) if include_load and ids else None
    return [{**r, "listing": listings.get(r["agent_id"]), **({"load": loads.get(r["agent_id"], 0)} if loads is not None else {})} for r in rows]


async def _query_ranked(ctx: CallContext, req: QueryAgents, scope: str | None) -> AgentList:
    """``q``: the agents the caller sees by relevance (the search's ranking and cursor), narrowed by the other filters
    (a page may hold fewer than ``limit`` when they drop some)."""
    from .search import ranked_ids

    if req.text is not None or req.sort is not AgentSort.id:
        raise InvalidArgument("q orders by relevance: give it without text and sort", details={"field": "q"})
    ids, next_cursor, _ = await ranked_ids(ctx, req.q or "", SearchKind.agent, req.limit, req.cursor, capabilities=req.capabilities)

    def op(conn: Connection) -> list[dict[str, Any]]:
        rows = {r["agent_id"]: r for r in agent_ops.by_ids(conn, ids)}
        kept = [
            rows[i] for i in ids
            if i in rows and (scope is None or rows[i]["tenant_id"] == scope)
            and (req.status is None or rows[i]["status"] == req.status)
            and (req.service_tier is None or rows[i]["service_tier"] == req.service_tier)
            and (not req.any_capabilities or set(req.any_capabilities) & set(rows[i]["capabilities"]))
        ]  # fmt: skip
        kept = _with_figures(conn, kept, req.include_load)
        return [r for r in kept if _stands(r["listing"], req.min_rating, req.min_reputation)]

    rows = await ctx.store.read(op)
    return AgentList(agents=[Agent.model_validate(r) for r in rows], count=len(rows), next_cursor=next_cursor)


async def heartbeat(ctx: CallContext, req: Heartbeat) -> HeartbeatAck:
    row = await _controlled_agent(ctx, req.agent)
    row, events = await ctx.store.write(_heartbeat_op, row["agent_id"], req.status, ctx.clock.now())
    await announce(ctx.hub, events)
    return HeartbeatAck(agent_id=row["agent_id"], status=row["status"], last_heartbeat=row["last_heartbeat"])


async def update(ctx: CallContext, req: UpdateAgent) -> Agent:
    row = await _controlled_agent(ctx, req.agent)
    # null leaves a field as it is (only the manifest and the A2A front are turned off by null): a null capability
    # list or description reached the store and broke the agent's search text (500).
    changes = req.model_dump(mode="json", exclude={"agent", "manifest", "a2a"}, exclude_unset=True, exclude_none=True)
    if "manifest" in req.model_fields_set:
        changes["manifest"] = req.manifest.model_dump(mode="json", exclude_none=True) if req.manifest else None
    if "a2a" in req.model_fields_set:
        changes["a2a"] = req.a2a.model_dump(mode="json") if req.a2a else None
    if "status" in changes and row["status"] in ("paused", "terminated"):
        raise PermissionDenied(f"agent is {row['status']} by an administrator; only an override can change that")
    updated, events = await ctx.store.write(_update_op, row["agent_id"], changes, ctx.clock.now())
    await announce(ctx.hub, events)
    return Agent.model_validate(updated)


def _heartbeat_op(conn: Connection, agent_id: str, status: str | None, now: datetime) -> tuple[dict[str, Any], list[Event]]:
    before = agent_ops.resolve(conn, None, agent_id)["status"]
    row = agent_ops.heartbeat(conn, agent_id, status, now)
    return row, status_changed(conn, row, before, now)


def _update_op(conn: Connection, agent_id: str, changes: dict[str, Any], now: datetime) -> tuple[dict[str, Any], list[Event]]:
    before = agent_ops.resolve(conn, None, agent_id)["status"]
    row = agent_ops.modify(conn, agent_id, changes, now)
    events = [record(conn, row["tenant_id"], "agent_updated", Agent.model_validate(row).model_dump(mode="json"), now)]
    return row, events + status_changed(conn, row, before, now)


def _deregister_op(conn: Connection, row: dict[str, Any], now: datetime) -> tuple[list[str], Event]:
    hashes = key_ops.revoke_agent_keys(conn, row["agent_id"], now)
    agent_ops.remove(conn, row["agent_id"])
    data = {"agent_id": row["agent_id"], "agent_name": row["agent_name"]}
    return hashes, record(conn, row["tenant_id"], "agent_deregistered", data, now)


async def deregister(ctx: CallContext, req: AgentLookup) -> Deregistered:
    row = await _controlled_agent(ctx, req.agent)
    hashes, event = await ctx.store.write(_deregister_op, row, ctx.clock.now())
    ctx.hub.auth.forget(hashes)
    await announce(ctx.hub, [event])
    return Deregistered(agent_id=row["agent_id"], revoked_keys=len(hashes))


def _stands(listing: dict[str, Any] | None, min_rating: float | None, min_reputation: float | None) -> bool:
    """With no filter, every agent; with one, a marketplace agent whose listing stands at least so well."""
    if min_rating is None and min_reputation is None:
        return True
    return listing is not None and (min_rating is None or listing["rating"] >= min_rating) and (
        min_reputation is None or listing["reputation"] >= min_reputation
    )


async def marketplace(ctx: CallContext, req: MarketplaceQuery) -> MarketplaceStats:
    counts = await ctx.store.read(agent_ops.counts, ctx.principal.tenant_scope(), req.min_rating, req.min_reputation)
    return MarketplaceStats(total_agents=sum(counts["by_status"].values()), **counts)


def status_changed(conn: Connection, row: dict[str, Any], before: str, now: datetime, reason: str | None = None) -> list[Event]:
    if row["status"] == before:
        return []
    data = {"agent_id": row["agent_id"], "agent_name": row["agent_name"], "from": before, "to": row["status"]}
    if reason:
        data["reason"] = reason
    return [record(conn, row["tenant_id"], "agent_status_changed", data, now)]


async def touch(hub: Hub, agent_id: str) -> None:
    """A live connection is a sign of life: the same as a heartbeat that changes nothing else."""
    _, events = await hub.store.write(_heartbeat_op, agent_id, None, hub.clock.now())
    await announce(hub, events)


LIVE_PER_WRITE = 1_000  # agents whose presence one statement writes


async def touch_live(hub: Hub) -> None:
    """Presence for every agent with a live stream on this replica (``core/presence``), a thousand per write; an
    agent that had gone offline meanwhile is active again, as at a heartbeat."""
    agent_ids = hub.live.agent_ids()
    now = hub.clock.now()
    for start in range(0, len(agent_ids), LIVE_PER_WRITE):
        await announce(hub, await hub.store.write(_touch_many_op, agent_ids[start : start + LIVE_PER_WRITE], now))


def _touch_many_op(conn: Connection, agent_ids: list[str], now: datetime) -> list[Event]:
    back = agent_ops.touch_many(conn, agent_ids, now)
    return [e for row in back for e in status_changed(conn, {**row, "status": "active"}, "offline", now)]


def silent_agents(conn: Connection, offline_after: timedelta, now: datetime) -> list[str]:
    return agent_ops.silent(conn, now - offline_after)


def mark_silent_offline(conn: Connection, agent_ids: list[str], offline_after: timedelta, now: datetime) -> list[Event]:
    """Presence: those of ``agent_ids`` (found silent by ``agent_ops.silent``) still silent for ``offline_after`` (no
    heartbeat, no live stream) go offline."""
    silent = agent_ops.mark_silent_offline(conn, agent_ids, now - offline_after)
    return [e for r in silent for e in status_changed(conn, {**r, "status": "offline"}, r["status"], now, "silent")]
