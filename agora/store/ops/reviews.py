"""Reviews of marketplace listings, their history, and the ratings each listing carries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update

from agora_sdk.errors import NotFound
from agora_sdk.wire.reviews import bayesian

from ..schema import market_instances, market_listings, market_review_history, market_reviews, tasks
from .pagination import decode_position, page

VERIFYING_RUN = timedelta(minutes=10)  # an instance that ran this long makes its tenant a verified buyer


def get(conn: Connection, review_id: str, *, lock: bool = False) -> dict[str, Any]:
    stmt = select(market_reviews).where(market_reviews.c.review_id == review_id)
    row = conn.execute(stmt.with_for_update() if lock and conn.dialect.name == "postgresql" else stmt).mappings().first()
    if row is None:
        raise no_review(review_id)
    return dict(row)


def no_review(review_id: str) -> NotFound:
    """One answer for a review that is not there and for one the caller may not change (another tenant's)."""
    return NotFound(f"no review '{review_id}' for you to change", details={"review_id": review_id})


def of_tenant(conn: Connection, listing_id: str, tenant_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(market_reviews).where(market_reviews.c.listing_id == listing_id, market_reviews.c.tenant_id == tenant_id)
    ).mappings().first()
    return dict(row) if row else None


def verified_run(conn: Connection, listing_id: str, tenant_id: str, now: datetime) -> int | None:
    """The listing version the tenant last ran, if one of its instances of the listing completed an execution or ran
    ``VERIFYING_RUN`` at least (None: the tenant is not a verified buyer of it)."""
    insts = conn.execute(
        select(market_instances.c.agent_id, market_instances.c.listing_version, market_instances.c.started_at, market_instances.c.stopped_at)
        .where(market_instances.c.listing_id == listing_id, market_instances.c.tenant_id == tenant_id)
        .order_by(market_instances.c.created_at.desc())
    ).all()
    if not insts:
        return None
    ran_long = any(i.started_at is not None and (i.stopped_at or now) - i.started_at >= VERIFYING_RUN for i in insts)
    if ran_long:
        return int(insts[0].listing_version)
    completed = conn.execute(
        select(tasks.c.task_id).where(tasks.c.assignee.in_([i.agent_id for i in insts]), tasks.c.status == "completed").limit(1)
    ).first()
    return int(insts[0].listing_version) if completed else None


def written_since(conn: Connection, tenant_id: str, since: datetime) -> int:
    return int(conn.execute(
        select(func.count()).select_from(market_reviews).where(market_reviews.c.tenant_id == tenant_id, market_reviews.c.created_at >= since)
    ).scalar_one())  # fmt: skip


def insert_review(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(market_reviews).values(**row))


def replace(conn: Connection, old: dict[str, Any], changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Change a review, keeping what it said before in its history."""
    conn.execute(insert(market_review_history).values(
        review_id=old["review_id"], rating=old["rating"], title=old["title"], text=old["text"],
        listing_version=old["listing_version"], status=old["status"], replaced_at=now,
    ))  # fmt: skip
    conn.execute(update(market_reviews).where(market_reviews.c.review_id == old["review_id"]).values(**changes, updated_at=now))
    return {**old, **changes, "updated_at": now}


def set_fields(conn: Connection, review_id: str, **changes: Any) -> None:
    conn.execute(update(market_reviews).where(market_reviews.c.review_id == review_id).values(**changes))


def rate_listing(conn: Connection, listing_id: str) -> dict[str, Any]:
    """Count the listing's published ratings again and keep its rating, count, sum and distribution."""
    rows = conn.execute(
        select(market_reviews.c.rating, func.count().label("n"))
        .where(market_reviews.c.listing_id == listing_id, market_reviews.c.status == "published")
        .group_by(market_reviews.c.rating)
    ).all()
    distribution = [0] * 5
    for rating, n in rows:
        distribution[rating - 1] = int(n)
    count = sum(distribution)
    total = sum((star + 1) * n for star, n in enumerate(distribution))
    figures = {"rating": bayesian(total, count), "rating_count": count, "rating_total": total, "rating_distribution": distribution}
    conn.execute(update(market_listings).where(market_listings.c.listing_id == listing_id).values(**figures))
    return figures


def listed_page(conn: Connection, listing_id: str, tenant_id: str | None, sees_hidden: bool, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first: the published reviews, and the caller's own whatever its status (all of them for the admin)."""
    stmt = select(market_reviews).where(market_reviews.c.listing_id == listing_id)
    if not sees_hidden:
        stmt = stmt.where(or_(market_reviews.c.status == "published", market_reviews.c.tenant_id == tenant_id))
    after = decode_position(cursor, 2)
    if after is not None:
        at = datetime.fromisoformat(after[0])
        stmt = stmt.where(
            or_(market_reviews.c.updated_at < at, and_(market_reviews.c.updated_at == at, market_reviews.c.review_id < after[1]))
        )
    rows = conn.execute(stmt.order_by(market_reviews.c.updated_at.desc(), market_reviews.c.review_id.desc()).limit(limit + 1)).mappings()
    return page([dict(r) for r in rows], limit, lambda r: (r["updated_at"].isoformat(), r["review_id"]))
