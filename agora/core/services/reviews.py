"""Ratings and reviews of marketplace listings, by verified buyers only; the publisher answers, the hub's
administrator may hide one (with a reason, in the audit log). Each change counts the listing's rating again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from agora.core.context import CallContext
from agora.core.ids import new_id
from agora.store.ops import audit as audit_ops
from agora.store.ops import marketplace as market_ops
from agora.store.ops import reviews as review_ops
from agora.store.schema import tenants
from agora_sdk.errors import Conflict, PermissionDenied, RateLimited
from agora_sdk.wire import reviews as w

from .audit import audit_entry

# A tenant younger than NEW_TENANT_AGE writes at most NEW_TENANT_REVIEWS a day: a burst of fresh tenants rating a
# listing up (or down) is slowed to a trickle, while an established buyer is never held back.
NEW_TENANT_AGE = timedelta(days=7)
NEW_TENANT_REVIEWS = 3
DAY = timedelta(days=1)


def review_model(row: dict[str, Any], ctx: CallContext) -> w.Review:
    p = ctx.principal
    yours = row["tenant_id"] == p.tenant_id and not p.is_admin
    return w.Review(
        review_id=row["review_id"], listing_id=row["listing_id"], rating=row["rating"], title=row["title"], text=row["text"],
        listing_version=row["listing_version"], status=w.ReviewStatus(row["status"]), yours=yours, edited=row["edits"] > 0,
        hidden_reason=row["hidden_reason"] if (yours or p.is_admin) else None,
        response=w.Response(text=row["response"], at=row["responded_at"]) if row["response"] is not None else None,
        created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


def summary(listing: dict[str, Any]) -> w.RatingSummary:
    count = listing["rating_count"]
    return w.RatingSummary(
        rating=listing["rating"], rating_count=count, average=round(listing["rating_total"] / count, 4) if count else None,
        distribution={str(star + 1): n for star, n in enumerate(listing["rating_distribution"])},
    )  # fmt: skip


async def write(ctx: CallContext, req: w.WriteReview) -> w.Review:
    """Rate a listing the caller's tenant ran (once per tenant and listing; a withdrawn review is published anew)."""
    p, now = ctx.principal, ctx.clock.now()

    def op(conn: Connection) -> dict[str, Any]:
        listing = market_ops.listing(conn, req.listing, p.tenant_id, listed_only=False, sees_all=p.is_admin)
        if p.is_admin or listing["tenant_id"] == p.tenant_id:
            raise PermissionDenied("a listing is rated by its buyers, not by its publisher or the hub", details={"reason": "own_listing"})
        version = review_ops.verified_run(conn, listing["listing_id"], p.tenant_id, now)
        if version is None:
            raise PermissionDenied(
                f"only a verified buyer rates '{listing['agent_name']}': a tenant with an instance of it that completed an "
                f"execution or ran {review_ops.VERIFYING_RUN.seconds // 60} minutes",
                details={"reason": "not_a_verified_buyer", "listing_id": listing["listing_id"]},
            )
        _check_burst(conn, p.tenant_id, now)
        fields = {"rating": req.rating, "title": req.title, "text": req.text, "listing_version": req.listing_version or version}
        existing = review_ops.of_tenant(conn, listing["listing_id"], p.tenant_id)
        if existing is None:
            row = {
                "review_id": new_id("rev"), "listing_id": listing["listing_id"], "tenant_id": p.tenant_id, "author": p.label,
                **fields, "status": "published", "hidden_reason": None, "response": None, "responded_at": None, "edits": 0,
                "created_at": now, "updated_at": now,
            }  # fmt: skip
            review_ops.insert_review(conn, row)
        elif existing["status"] == "withdrawn":
            row = review_ops.replace(conn, existing, {**fields, "status": "published", "author": p.label, "edits": existing["edits"] + 1}, now)
        else:
            raise Conflict(
                "this tenant has reviewed the listing already: edit that review", details={"reason": "already_reviewed", "review_id": existing["review_id"]}
            )
        review_ops.rate_listing(conn, listing["listing_id"])
        return row

    return review_model(await ctx.store.write(op), ctx)


def _check_burst(conn: Connection, tenant_id: str, now: datetime) -> None:
    born = conn.execute(select(tenants.c.created_at).where(tenants.c.tenant_id == tenant_id)).scalar()
    if born is None or now - born >= NEW_TENANT_AGE:
        return
    if review_ops.written_since(conn, tenant_id, now - DAY) >= NEW_TENANT_REVIEWS:
        raise RateLimited(
            f"a tenant younger than {NEW_TENANT_AGE.days} days writes at most {NEW_TENANT_REVIEWS} reviews a day",
            details={"reason": "review_burst", "retry_after_seconds": int(DAY.total_seconds())},
        )


def _own(ctx: CallContext, review: dict[str, Any]) -> None:
    """The caller's tenant wrote it: to any other caller a review to change is not there (the 404 of no such review)."""
    if review["tenant_id"] != ctx.principal.tenant_id or ctx.principal.is_admin:
        raise review_ops.no_review(review["review_id"])


async def edit(ctx: CallContext, req: w.EditReview) -> w.Review:
    now = ctx.clock.now()

    def op(conn: Connection) -> dict[str, Any]:
        review = review_ops.get(conn, req.review_id, lock=True)
        _own(ctx, review)
        if review["status"] == "withdrawn":
            raise Conflict("the review is withdrawn: write it again", details={"reason": "withdrawn"})
        changes = {k: v for k, v in {"rating": req.rating, "title": req.title, "text": req.text}.items() if v is not None}
        if not changes:
            return review
        row = review_ops.replace(conn, review, {**changes, "author": ctx.principal.label, "edits": review["edits"] + 1}, now)
        review_ops.rate_listing(conn, review["listing_id"])
        return row

    return review_model(await ctx.store.write(op), ctx)


async def withdraw(ctx: CallContext, req: w.ReviewRef) -> w.Review:
    now = ctx.clock.now()

    def op(conn: Connection) -> dict[str, Any]:
        review = review_ops.get(conn, req.review_id, lock=True)
        _own(ctx, review)
        if review["status"] == "withdrawn":
            return review  # asked again: nothing changes
        row = review_ops.replace(conn, review, {"status": "withdrawn"}, now)
        review_ops.rate_listing(conn, review["listing_id"])
        return row

    return review_model(await ctx.store.write(op), ctx)


async def respond(ctx: CallContext, req: w.RespondToReview) -> w.Review:
    """The publisher's one answer to a review (writing again replaces it)."""
    p, now = ctx.principal, ctx.clock.now()

    def op(conn: Connection) -> dict[str, Any]:
        review = review_ops.get(conn, req.review_id, lock=True)
        listing = market_ops.listing(conn, review["listing_id"], p.tenant_id, listed_only=False, sees_all=True)
        if listing["tenant_id"] != p.tenant_id:
            raise review_ops.no_review(req.review_id)
        review_ops.set_fields(conn, req.review_id, response=req.text, responded_at=now)
        return {**review, "response": req.text, "responded_at": now}

    return review_model(await ctx.store.write(op), ctx)


async def hide(ctx: CallContext, req: w.HideReview) -> w.Review:
    """The hub's administrator hides a review (kept, with the reason) or shows it again; both go to the audit log."""
    now = ctx.clock.now()

    def op(conn: Connection) -> dict[str, Any]:
        review = review_ops.get(conn, req.review_id, lock=True)
        status = "hidden" if req.hidden else "published"
        if review["status"] == "withdrawn":
            raise Conflict("the review is withdrawn by its author", details={"reason": "withdrawn"})
        row = review_ops.replace(conn, review, {"status": status, "hidden_reason": req.reason if req.hidden else None}, now)
        review_ops.rate_listing(conn, review["listing_id"])
        action = "review_hidden" if req.hidden else "review_shown"
        audit_ops.append(conn, audit_entry(ctx, action, req.review_id, review["tenant_id"], req.reason, now, {"listing_id": review["listing_id"]}))
        return row

    return review_model(await ctx.store.write(op), ctx)


async def list_reviews(ctx: CallContext, req: w.ListReviews) -> w.ReviewList:
    """A listing's published reviews, newest first, with its rating summary (the caller's own review whatever its
    status; every review for the hub's administrator)."""
    p = ctx.principal

    def op(conn: Connection) -> w.ReviewList:
        listing = market_ops.listing(conn, req.listing, p.tenant_id, listed_only=False, sees_all=p.is_admin)
        rows, next_cursor = review_ops.listed_page(conn, listing["listing_id"], p.tenant_id, p.is_admin, req.limit, req.cursor)
        return w.ReviewList(
            listing_id=listing["listing_id"], summary=summary(listing), reviews=[review_model(r, ctx) for r in rows], next_cursor=next_cursor
        )

    return await ctx.store.read(op)
