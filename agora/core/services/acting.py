"""Which agent a call acts for (an agent token always acts as its own agent; other keys name one they can see), and
which tenant a listing covers."""

from __future__ import annotations

from typing import Any

from agora.core.auth import Principal, PrincipalKind
from agora.core.context import CallContext, Hub
from agora.store.ops import agents as agent_ops
from agora.store.ops import keys as key_ops
from agora_sdk.errors import InvalidArgument, NotFound, PermissionDenied


async def acting_agent(ctx: CallContext, ref: str | None, what: str) -> dict[str, Any]:
    """The agent row the call acts for. ``what`` finishes the sentence "an agent … only as itself" in errors."""
    p = ctx.principal
    if p.kind is PrincipalKind.agent:
        if ref is not None and ref != p.agent_id:
            row = await ctx.store.read(agent_ops.resolve, p.tenant_scope(), ref)
            if row["agent_id"] != p.agent_id:
                raise PermissionDenied(f"an agent {what} only as itself", details={"agent": ref})
        return await ctx.store.read(agent_ops.resolve, p.tenant_scope(), p.agent_id)
    if ref is None:
        raise InvalidArgument("name the agent ('agent'): this key is not an agent's", details={"field": "agent"})
    return await ctx.store.read(agent_ops.resolve, p.tenant_scope(), ref)


async def check_sender(hub: Hub, principal: Principal, sender: str | None) -> None:
    """Envelopes of other protocols may name their sender; it must be the caller (an agent acts only as itself)."""
    if sender is None or sender == (principal.agent_id or "system"):
        return
    if principal.agent_id is not None:
        named = await hub.store.read(agent_ops.resolve, principal.tenant_scope(), sender)
        if named["agent_id"] == principal.agent_id:
            return
    raise PermissionDenied("the envelope's sender must be the calling agent", details={"sender": sender})


async def tenant_in_scope(ctx: CallContext, ref: str | None) -> str | None:
    """The tenant a listing covers: the one ``ref`` names (id or name), else the caller's own (None: every tenant, for
    the admin). A tenant the caller may not see is the 404 of one that does not exist."""
    scope = ctx.principal.tenant_scope()
    if ref is None:
        return scope
    tenant = await ctx.store.read(key_ops.resolve_tenant, ref)
    if tenant is None or (scope is not None and tenant["tenant_id"] != scope):
        raise NotFound(f"no tenant '{ref}'", details={"field": "tenant"})
    return str(tenant["tenant_id"])
