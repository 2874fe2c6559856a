"""Audit entries: who did what to which target, why, and with what authority."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agora.core.context import CallContext
from agora.core.ids import new_id
from agora.store.ops import audit as audit_ops
from agora_sdk.wire.admin import AuditEntry, AuditLog, AuditRequest


def audit_entry(
    ctx: CallContext, action: str, target_id: str, tenant_id: str | None, reason: str, now: datetime, details: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": new_id("evt"),
        "at": now,
        "actor": ctx.principal.label,
        "actor_kind": ctx.principal.kind.value,
        "action": action,
        "target_id": target_id,
        "tenant_id": tenant_id,
        "reason": reason,
        "authority": ctx.principal.authority,
        "details": {"request_id": ctx.request_id, **details},
    }


async def read(ctx: CallContext, req: AuditRequest) -> AuditLog:
    rows, next_cursor = await ctx.store.read(
        audit_ops.read, ctx.principal.tenant_scope(), req.action, req.target_id, req.limit, req.cursor
    )
    return AuditLog(entries=[AuditEntry.model_validate(r) for r in rows], count=len(rows), next_cursor=next_cursor)
