"""Audit entries: who did what to which target, why, and with what authority."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agora.core.auth import Principal
from agora.core.context import CallContext
from agora.core.ids import new_id
from agora.store.ops import audit as audit_ops
from agora_sdk.wire.admin import AuditEntry, AuditLog, AuditRequest


def audit_entry(
    ctx: CallContext, action: str, target_id: str, tenant_id: str | None, reason: str, now: datetime, details: dict[str, Any]
) -> dict[str, Any]:
    return entry_by(ctx.principal, ctx.request_id, action, target_id, tenant_id, reason, now, details)


def entry_by(
    principal: Principal, request_id: str, action: str, target_id: str, tenant_id: str | None, reason: str, now: datetime, details: dict[str, Any]
) -> dict[str, Any]:
    """An audit entry of something ``principal`` did outside a catalog call (an OAuth grant on the consent page)."""
    return {
        "event_id": new_id("evt"),
        "at": now,
        "actor": principal.label,
        "actor_kind": principal.kind.value,
        "action": action,
        "target_id": target_id,
        "tenant_id": tenant_id,
        "reason": reason,
        "authority": principal.authority,
        "details": {"request_id": request_id, **_who(principal), **details},
    }


def _who(principal: Principal) -> dict[str, Any]:
    """Who acted, beside the actor's label: the person (with their email) and the role they acted in, and the key."""
    if principal.user_id is None:
        return {}
    return {"user": {"user_id": principal.user_id, "email": principal.user_email}, "role": principal.role, "key_id": principal.key_id}


async def read(ctx: CallContext, req: AuditRequest) -> AuditLog:
    rows, next_cursor = await ctx.store.read(
        audit_ops.read, ctx.principal.tenant_scope(), req.action, req.target_id, req.limit, req.cursor
    )
    return AuditLog(entries=[AuditEntry.model_validate(r) for r in rows], count=len(rows), next_cursor=next_cursor)
