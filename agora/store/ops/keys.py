"""API keys (only hashes are stored) and tenants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from agora.core.ids import new_id
from agora_sdk.errors import NotFound

from ..base import point_read
from ..schema import agents, api_keys, tenants, users
from .pagination import decode_cursor, page

_INSERT_KEY = insert(api_keys)


def insert_key(
    conn: Connection,
    *,
    key_hash: str,
    prefix: str,
    kind: str,
    name: str,
    tenant_id: str | None,
    agent_id: str | None,
    scopes: list[str],
    created_by: str,
    now: datetime,
    role: str | None = None,
    user_id: str | None = None,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    row = {
        "key_id": new_id("key"),
        "key_hash": key_hash,
        "prefix": prefix,
        "kind": kind,
        "name": name,
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "scopes": scopes,
        "created_at": now,
        "created_by": created_by,
        "revoked_at": None,
        "role": role,
        "user_id": user_id,
        "expires_at": expires_at,
    }
    conn.execute(_INSERT_KEY, row)
    return row


def insert_fields(conn: Connection, fields: dict[str, Any]) -> dict[str, Any]:
    """``insert_key`` with its fields in one dict (a store write passes positional arguments only)."""
    return insert_key(conn, **fields)


@point_read
def lookup(conn: Connection, key_hash: str, now: datetime) -> dict[str, Any] | None:
    """The live key with this hash (not revoked, not past its expiry), with its agent's status when it is an agent
    key and its person's email when it acts for one."""
    stmt = (
        select(api_keys, agents.c.status.label("agent_status"), users.c.email.label("user_email"))
        .select_from(
            api_keys.outerjoin(agents, agents.c.agent_id == api_keys.c.agent_id).outerjoin(users, users.c.user_id == api_keys.c.user_id)
        )
        .where(
            api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
        )
    )  # fmt: skip
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def list_keys(
    conn: Connection,
    tenant_scope: str | None,
    kind: str | None,
    include_revoked: bool,
    newest_first: bool,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset-paged by key id (ids begin with the second they were made: oldest first, or newest)."""
    stmt = select(api_keys)
    if tenant_scope is not None:
        stmt = stmt.where(api_keys.c.tenant_id == tenant_scope)
    if kind is not None:
        stmt = stmt.where(api_keys.c.kind == kind)
    if not include_revoked:
        stmt = stmt.where(api_keys.c.revoked_at.is_(None))
    after = decode_cursor(cursor)
    if after:
        stmt = stmt.where(api_keys.c.key_id < after if newest_first else api_keys.c.key_id > after)
    order = api_keys.c.key_id.desc() if newest_first else api_keys.c.key_id
    rows = conn.execute(stmt.order_by(order).limit(limit + 1)).mappings().all()
    return page([dict(r) for r in rows], limit, lambda r: r["key_id"])


def revoke(conn: Connection, tenant_scope: str | None, key_id: str, now: datetime) -> dict[str, Any]:
    stmt = select(api_keys).where(api_keys.c.key_id == key_id)
    if tenant_scope is not None:
        stmt = stmt.where(api_keys.c.tenant_id == tenant_scope)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"no key '{key_id}'", details={"key_id": key_id})
    if row["revoked_at"] is None:
        conn.execute(update(api_keys).where(api_keys.c.key_id == key_id).values(revoked_at=now))
    return {**row, "revoked_at": row["revoked_at"] or now}


def revoke_agent_keys(conn: Connection, agent_id: str, now: datetime) -> list[str]:
    hashes = conn.execute(
        select(api_keys.c.key_hash).where(api_keys.c.agent_id == agent_id, api_keys.c.revoked_at.is_(None))
    ).scalars().all()
    conn.execute(
        update(api_keys).where(api_keys.c.agent_id == agent_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    return list(hashes)


def revoke_user_keys(conn: Connection, user_id: str, tenant_id: str | None, now: datetime) -> list[str]:
    """Revoke the keys acting for a person (in one tenant, or everywhere); returns their hashes."""
    live = (api_keys.c.user_id == user_id) & api_keys.c.revoked_at.is_(None)
    if tenant_id is not None:
        live &= api_keys.c.tenant_id == tenant_id
    hashes = conn.execute(select(api_keys.c.key_hash).where(live)).scalars().all()
    conn.execute(update(api_keys).where(live).values(revoked_at=now))
    return list(hashes)


def resolve_tenant(conn: Connection, ref: str) -> dict[str, Any] | None:
    row = conn.execute(select(tenants).where(or_(tenants.c.tenant_id == ref, tenants.c.name == ref))).mappings().first()
    return dict(row) if row else None


def create_tenant(conn: Connection, name: str | None, now: datetime) -> dict[str, Any]:
    """A new tenant; without a name it is named by its id."""
    tenant_id = new_id("ten")
    row = {"tenant_id": tenant_id, "name": name or tenant_id, "created_at": now}
    conn.execute(insert(tenants).values(**row))
    return row
