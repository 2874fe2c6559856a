"""Counts of what a caller can find (``agora.marketplace.stats``), read from the search index's documents: the
same rows, and the same visibility, as ``agora.marketplace.search``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, or_, select, true

from ..schema import search_documents as docs


def counts(conn: Connection, tenant_id: str | None, sees_all: bool, category: str | None) -> list[dict[str, Any]]:
    """Listings and agents the viewer sees (public documents and its tenant's; the admin every one), counted by
    kind, category, pricing model and region."""
    visible = true() if sees_all else or_(docs.c.public, docs.c.tenant_id == tenant_id)
    stmt = select(docs.c.kind, docs.c.category, docs.c.pricing_model, docs.c.region, func.count().label("n")).where(
        visible, docs.c.kind.in_(("listing", "agent"))
    )
    if category:
        stmt = stmt.where(func.lower(docs.c.category) == category.lower())
    stmt = stmt.group_by(docs.c.kind, docs.c.category, docs.c.pricing_model, docs.c.region)
    return [dict(r) for r in conn.execute(stmt).mappings()]
