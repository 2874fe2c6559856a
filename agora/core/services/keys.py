"""API key management: the admin manages every key; a customer with the ``admin`` scope manages its tenant's."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agora.core.auth import (
    ALL_SCOPES,
    DEFAULT_SCOPES,
    ROLE_SCOPES,
    PrincipalKind,
    display_prefix,
    generate_key,
    hash_key,
)
from agora.core.context import CallContext
from agora.store.ops import agents as agent_ops
from agora.store.ops import audit as audit_ops
from agora.store.ops import keys as key_ops
from agora_sdk.errors import InvalidArgument, NotFound, PermissionDenied
from agora_sdk.wire.admin import (
    CreatedKey,
    CreateKey,
    KeyInfo,
    KeyKind,
    KeyList,
    ListKeys,
    RevokedKey,
    RevokeKey,
)

from .acting import tenant_in_scope
from .audit import audit_entry


def _check_scopes(ctx: CallContext, req: CreateKey) -> list[str]:
    p = ctx.principal
    if req.role is not None:
        if req.kind is not KeyKind.customer:
            raise InvalidArgument("'role' applies to customer keys only", details={"field": "role"})
        if req.scopes is not None:
            raise InvalidArgument("give either 'role' or 'scopes', not both", details={"field": "scopes"})
        scopes = ROLE_SCOPES[req.role]
        if not p.is_admin and not scopes <= p.scopes:
            raise PermissionDenied(f"a key cannot carry the {req.role.value} role: its creator has fewer rights", details={"field": "role"})
        return sorted(scopes)
    if req.scopes is None:
        defaults = ALL_SCOPES if req.kind is KeyKind.admin else DEFAULT_SCOPES
        # A key never carries more than its creator: a tenant admin's keys default to what it has itself.
        return sorted(defaults if p.is_admin else defaults & p.scopes)
    unknown = sorted(set(req.scopes) - ALL_SCOPES)
    if unknown:
        raise InvalidArgument(f"unknown scope(s): {', '.join(unknown)}", details={"field": "scopes", "known": sorted(ALL_SCOPES)})
    if not p.is_admin and not set(req.scopes) <= p.scopes:
        raise PermissionDenied("a key cannot grant scopes its creator does not have", details={"field": "scopes"})
    return sorted(set(req.scopes))


def _create_op(conn: Connection, ctx: CallContext, req: CreateKey, scopes: list[str], secret: str, now: datetime) -> dict[str, Any]:
    p = ctx.principal
    agent_id = None
    if req.kind is KeyKind.admin:
        if not p.is_admin:
            raise PermissionDenied("only the hub administrator can create admin keys")
        tenant_id = "default"
    elif req.kind is KeyKind.agent:
        if not req.agent:
            raise InvalidArgument("an agent key needs 'agent' (the agent id or name)", details={"field": "agent"})
        try:
            agent = agent_ops.resolve(conn, p.tenant_scope(), req.agent)
        except NotFound as exc:  # said of the field, so a form can show it beside the agent it names
            raise NotFound(exc.message, details={**exc.details, "field": "agent"}) from None
        agent_id, tenant_id = agent["agent_id"], agent["tenant_id"]
    elif not p.is_admin:
        if req.tenant and req.tenant not in (p.tenant_id,):
            tenant = key_ops.resolve_tenant(conn, req.tenant)
            if tenant is None or tenant["tenant_id"] != p.tenant_id:
                raise NotFound(f"no tenant '{req.tenant}'", details={"field": "tenant"})
        tenant_id = p.tenant_id
    else:
        tenant = key_ops.resolve_tenant(conn, req.tenant) if req.tenant else None
        tenant_id = (tenant or key_ops.create_tenant(conn, req.tenant, now))["tenant_id"]
    row = key_ops.insert_key(
        conn,
        key_hash=hash_key(secret),
        prefix=display_prefix(secret),
        kind=req.kind.value,
        name=req.name,
        tenant_id=tenant_id,
        agent_id=agent_id,
        scopes=scopes,
        created_by=p.label,
        now=now,
        role=req.role.value if req.role is not None else None,
    )
    audit_ops.append(conn, audit_entry(ctx, "key_created", row["key_id"], tenant_id, req.name, now, {"kind": req.kind.value, "role": row["role"]}))
    return row


async def create(ctx: CallContext, req: CreateKey) -> CreatedKey:
    if req.kind is not KeyKind.customer and req.tenant and not ctx.principal.is_admin:
        raise InvalidArgument("'tenant' applies to customer keys only", details={"field": "tenant"})
    scopes = _check_scopes(ctx, req)
    secret = generate_key()
    row = await ctx.store.write(_create_op, ctx, req, scopes, secret, ctx.clock.now())
    return CreatedKey(key=secret, info=KeyInfo.model_validate(row))


async def list_keys(ctx: CallContext, req: ListKeys) -> KeyList:
    scope = await tenant_in_scope(ctx, req.tenant or None)
    rows, next_cursor = await ctx.store.read(
        key_ops.list_keys, scope, req.kind, req.include_revoked, req.newest_first, req.limit, req.cursor
    )
    return KeyList(keys=[KeyInfo.model_validate(r) for r in rows], count=len(rows), next_cursor=next_cursor)


def _revoke_op(conn: Connection, ctx: CallContext, key_id: str, now: datetime) -> dict[str, Any]:
    row = key_ops.revoke(conn, ctx.principal.tenant_scope(), key_id, now)
    audit_ops.append(conn, audit_entry(ctx, "key_revoked", key_id, row["tenant_id"], "", now, {"kind": row["kind"]}))
    return row


async def revoke(ctx: CallContext, req: RevokeKey) -> RevokedKey:
    if ctx.principal.kind is PrincipalKind.agent:
        raise PermissionDenied("agent tokens cannot manage keys")
    row = await ctx.store.write(_revoke_op, ctx, req.key_id, ctx.clock.now())
    ctx.hub.auth.forget([row["key_hash"]])
    return RevokedKey(key_id=row["key_id"], revoked_at=row["revoked_at"], info=KeyInfo.model_validate(row))
