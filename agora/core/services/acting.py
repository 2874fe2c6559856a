"""Which agent a call acts for: an agent token always acts as its own agent; other keys name one they can see."""

from __future__ import annotations

from typing import Any

from agora.core.auth import PrincipalKind
from agora.core.context import CallContext
from agora.store.ops import agents as agent_ops
from agora_sdk.errors import InvalidArgument, PermissionDenied


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
