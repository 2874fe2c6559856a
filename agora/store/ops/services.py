"""The ``services`` table: the catalog as stored data, so it can be filtered with SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from agora.core.ids import new_id
from ..search_documents import service_document

from ..schema import services
from . import search as search_ops
from .dialect import upsert_insert


def sync_catalog(conn: Connection, entries: list[dict[str, Any]], now: datetime) -> None:
    """Upsert one row per tool; a tool's id and creation time survive restarts and upgrades."""
    for entry in entries:
        stmt = upsert_insert(conn, services).values(**entry, service_id=new_id("svc"), created_at=now, updated_at=now)
        changed = {k: stmt.excluded[k] for k in entry if k != "service_name"}
        conn.execute(
            stmt.on_conflict_do_update(index_elements=["service_name"], set_={**changed, "updated_at": now})
        )
        search_ops.put(conn, service_document(entry, now))


def query(conn: Connection, category: str | None, status: str | None) -> list[dict[str, Any]]:
    stmt = select(services)
    if category:
        stmt = stmt.where(services.c.category == category)
    if status:
        stmt = stmt.where(services.c.status == status)
    return [dict(r) for r in conn.execute(stmt.order_by(services.c.service_name)).mappings().all()]
