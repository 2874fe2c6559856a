"""The append-only audit log of administrative actions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from agora_sdk.errors import InvalidArgument

from ..schema import audit_log
from .pagination import decode_cursor, page


def append(conn: Connection, entry: dict[str, Any]) -> None:
    conn.execute(insert(audit_log).values(**entry))


def read(
    conn: Connection,
    tenant_scope: str | None,
    action: str | None,
    target_id: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first."""
    stmt = select(audit_log)
    if tenant_scope is not None:
        stmt = stmt.where(audit_log.c.tenant_id == tenant_scope)
    if action:
        stmt = stmt.where(audit_log.c.action == action)
    if target_id:
        stmt = stmt.where(audit_log.c.target_id == target_id)
    before = decode_cursor(cursor)
    if before and not (before.isdigit() and len(before) <= 18):
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"})
    if before:
        stmt = stmt.where(audit_log.c.seq < int(before))
    rows = conn.execute(stmt.order_by(audit_log.c.seq.desc()).limit(limit + 1)).mappings().all()
    return page([dict(r) for r in rows], limit, lambda r: r["seq"])
