"""Agents: register (idempotent by name within a tenant), presence, lookup, search."""

from __future__ import annotations

from datetime import datetime
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
from agora.core.context import CallContext
from agora.store.ops import agents as agent_ops
from agora.store.ops import keys as key_ops
from agora_sdk.errors import InvalidArgument, NotFound, PermissionDenied
from agora_sdk.wire.agents import (
    Agent,
    AgentList,
    AgentLookup,
    Deregistered,
    Heartbeat,
    HeartbeatAck,
    ListAgents,
    MarketplaceStats,
    QueryAgents,
    RegisterAgent,
    RegisterCapability,
    Registration,
    UpdateAgent,
)
from agora_sdk.wire.common import Empty


def _register_op(
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


async def register(ctx: CallContext, req: RegisterAgent) -> Registration:
    p = ctx.principal
    acting = p.agent_id if p.kind is PrincipalKind.agent else None
    token = None if acting else generate_key()  # an agent re-registering itself already holds its token
    fields = req.model_dump(mode="json", exclude={"manifest"})
    fields["manifest"] = req.manifest.model_dump(mode="json", exclude_none=True) if req.manifest else None
    # The agent's token never carries more than the key that registered it.
    token_scopes = sorted(DEFAULT_SCOPES if p.is_admin else DEFAULT_SCOPES & p.scopes)
    row, created = await ctx.store.write(
        _register_op, p.tenant_id, fields, ctx.clock.now(), acting, token, token_scopes, p.label
    )
    agent = Agent.model_validate(row)
    await ctx.notifier.publish(
        Event("agent_registered" if created else "agent_updated", agent.tenant_id, agent.model_dump(mode="json"))
    )
    return Registration(
        agent_id=agent.agent_id,
        agent_name=agent.agent_name,
        status="registered" if created else "updated",
        agent_token=token,
        agent=agent,
        available_services=ctx.hub.services,
    )


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


async def get(ctx: CallContext, req: AgentLookup) -> Agent:
    return Agent.model_validate(await ctx.store.read(agent_ops.resolve, ctx.principal.tenant_scope(), req.agent))


async def list_agents(ctx: CallContext, req: ListAgents) -> AgentList:
    return await query(ctx, QueryAgents(status=req.status, limit=req.limit, cursor=req.cursor))


async def query(ctx: CallContext, req: QueryAgents) -> AgentList:
    rows, next_cursor = await ctx.store.read(
        lambda conn: agent_ops.query(
            conn,
            ctx.principal.tenant_scope(),
            all_of=req.capabilities,
            any_of=req.any_capabilities,
            status=req.status,
            service_tier=req.service_tier,
            text=req.text,
            limit=req.limit,
            cursor=req.cursor,
        )
    )
    return AgentList(agents=[Agent.model_validate(r) for r in rows], count=len(rows), next_cursor=next_cursor)


async def heartbeat(ctx: CallContext, req: Heartbeat) -> HeartbeatAck:
    row = await _controlled_agent(ctx, req.agent)
    before = row["status"]
    row = await ctx.store.write(agent_ops.heartbeat, row["agent_id"], req.status, ctx.clock.now())
    if row["status"] != before:
        await _status_changed(ctx, row, before)
    return HeartbeatAck(agent_id=row["agent_id"], status=row["status"], last_heartbeat=row["last_heartbeat"])


async def update(ctx: CallContext, req: UpdateAgent) -> Agent:
    row = await _controlled_agent(ctx, req.agent)
    changes = req.model_dump(mode="json", exclude={"agent", "manifest"}, exclude_unset=True)
    if "manifest" in req.model_fields_set:
        changes["manifest"] = req.manifest.model_dump(mode="json", exclude_none=True) if req.manifest else None
    if "status" in changes and row["status"] in ("paused", "terminated"):
        raise PermissionDenied(f"agent is {row['status']} by an administrator; only an override can change that")
    updated = await ctx.store.write(agent_ops.modify, row["agent_id"], changes, ctx.clock.now())
    agent = Agent.model_validate(updated)
    await ctx.notifier.publish(Event("agent_updated", agent.tenant_id, agent.model_dump(mode="json")))
    if updated["status"] != row["status"]:
        await _status_changed(ctx, updated, row["status"])
    return agent


def _deregister_op(conn: Connection, agent_id: str, now: datetime) -> list[str]:
    hashes = key_ops.revoke_agent_keys(conn, agent_id, now)
    agent_ops.remove(conn, agent_id)
    return hashes


async def deregister(ctx: CallContext, req: AgentLookup) -> Deregistered:
    row = await _controlled_agent(ctx, req.agent)
    hashes = await ctx.store.write(_deregister_op, row["agent_id"], ctx.clock.now())
    ctx.hub.auth.forget(hashes)
    await ctx.notifier.publish(Event("agent_deregistered", row["tenant_id"], {"agent_id": row["agent_id"]}))
    return Deregistered(agent_id=row["agent_id"], revoked_keys=len(hashes))


async def marketplace(ctx: CallContext, _req: Empty) -> MarketplaceStats:
    counts = await ctx.store.read(agent_ops.counts, ctx.principal.tenant_scope())
    return MarketplaceStats(total_agents=sum(counts["by_status"].values()), **counts)


async def _status_changed(ctx: CallContext, row: dict[str, Any], before: str) -> None:
    await ctx.notifier.publish(
        Event(
            "agent_status_changed",
            row["tenant_id"],
            {"agent_id": row["agent_id"], "agent_name": row["agent_name"], "from": before, "to": row["status"]},
        )
    )
