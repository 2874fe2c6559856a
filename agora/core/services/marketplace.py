"""Marketplace listings: publish (each publish of a name is its next version), discover with live figures, unlist."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agora.core import billing
from agora.core.context import CallContext
from agora.core.egress import http_url
from agora.core.reputation import PRIOR
from agora.store.ops import agents as agent_ops
from agora.store.ops import marketplace as market_ops
from agora_sdk.errors import Conflict, InvalidArgument, PermissionDenied
from agora_sdk.wire import marketplace as w
from agora_sdk.wire.common import redact_url
from agora_sdk.wire.search import SearchKind


async def publish(ctx: CallContext, req: w.PublishListing) -> w.MarketplaceListing:
    p, now = ctx.principal, ctx.clock.now()
    await _check_repository(ctx, req.repository.url)
    row, _created = await ctx.store.write(market_ops.publish, p.tenant_id, stored_fields(req), now)
    return listing_model(row)


def stored_fields(req: w.PublishListing) -> dict[str, Any]:
    """The listing's columns as a publish sets them."""
    fields = req.model_dump(mode="json")
    fields["search_text"] = agent_ops.search_text(req.agent_name, f"{req.description} {req.category}", req.capabilities)
    return fields


async def _check_repository(ctx: CallContext, url: str) -> None:
    """A customer's listing is fetched from an http(s) git URL on an address the egress policy lets a customer reach
    (hosting nodes clone those under the same policy); only the admin may list a path on the nodes' own disk, a
    file://, ssh or git:// repository."""
    field = {"field": "repository.url"}
    admin = ctx.principal.is_admin
    if not url.lower().startswith(("http://", "https://")):
        if not admin:
            raise PermissionDenied(
                "only the admin may list a repository that is not an http(s) git URL (a path on the hosting nodes' disk, "
                "file://, ssh or git://); give an http(s) git URL",
                details=field,
            )
        return
    try:
        parsed = http_url(url)
    except ValueError as exc:
        raise InvalidArgument(f"repository.url: {exc}", details=field) from None
    if not admin and not await ctx.hub.egress.acting_for(admin=False).admits(parsed):  # unresolvable or refused: one answer
        raise InvalidArgument(f"the hosting nodes do not fetch {redact_url(url)}: give a repository on a public address", details=field)


def listing_model(row: dict[str, Any], info: w.MarketplaceInfo | None = None) -> w.MarketplaceListing:
    # Its rating and reputation are the row's (store/ops/reviews.rate_listing, core/reputation.py); a listing just
    # published, as its publish wrote it, has neither yet.
    return w.MarketplaceListing.model_validate({
        "reputation": PRIOR, **row, "agent_id": row["listing_id"], "publisher": row["tenant_id"], "languages": row.get("languages") or [],
        "marketplace_info": info,
    })  # fmt: skip


async def discover(ctx: CallContext, req: w.Discover) -> w.ListingList:
    """Listed agents (by category and words, a page at a time), each with its availability, price, the caller's
    instances and performance measured from its instances' tasks and uptime."""

    if req.q is not None:
        return await _discover_ranked(ctx, req)

    def op(conn: Connection) -> tuple[list[w.MarketplaceListing], int, str | None]:
        rows, total, next_cursor = market_ops.discover(
            conn, req.category, (req.text or "").split(), req.limit, req.cursor, min_rating=req.min_rating,
            min_reputation=req.min_reputation, best=None if req.sort is w.DiscoverOrder.name else req.sort.value,
        )  # fmt: skip
        return with_info(conn, rows, ctx.principal.tenant_id, ctx.clock.now()), total, next_cursor

    listings, total, next_cursor = await ctx.store.read(op)
    return w.ListingList(agents=listings, total=total, next_cursor=next_cursor)


async def _discover_ranked(ctx: CallContext, req: w.Discover) -> w.ListingList:
    """``q``: listed listings by relevance (the search's ranking, its cursor), a category narrowing them."""
    from .search import ranked_ids

    if req.text is not None:
        raise InvalidArgument("give q (ranked by relevance) or text (words every listing holds), not both", details={"field": "q"})
    if req.min_rating is not None or req.min_reputation is not None or req.sort is not w.DiscoverOrder.name:
        raise InvalidArgument("q ranks by relevance: leave min_rating, min_reputation and sort out, or leave q out", details={"field": "q"})
    # (An empty category is none, as in the unranked listing.)
    ids, next_cursor, total = await ranked_ids(ctx, req.q or "", SearchKind.listing, req.limit, req.cursor, category=req.category or None)

    def op(conn: Connection) -> list[w.MarketplaceListing]:
        rows = {r["listing_id"]: r for r in market_ops.listings_by_id(conn, ids) if r["status"] == "listed"}
        return with_info(conn, [rows[i] for i in ids if i in rows], ctx.principal.tenant_id, ctx.clock.now())

    return w.ListingList(agents=await ctx.store.read(op), total=total, next_cursor=next_cursor)


async def get_listing(ctx: CallContext, req: w.ListingRef) -> w.MarketplaceListing:
    """One listing with its marketplace_info, as discover shows it: a listed one, or one the caller published or ran."""
    p = ctx.principal

    def op(conn: Connection) -> w.MarketplaceListing:
        row = market_ops.listing(conn, req.listing, p.tenant_id, listed_only=False, sees_all=p.is_admin)
        return with_info(conn, [row], p.tenant_id, ctx.clock.now())[0]

    return await ctx.store.read(op)


def with_info(conn: Connection, rows: list[dict[str, Any]], tenant: str | None, now: datetime) -> list[w.MarketplaceListing]:
    ids = [r["listing_id"] for r in rows]
    counts = market_ops.instance_counts(conn, ids, tenant)
    figures = market_ops.performance(conn, ids)
    return [listing_model(row, marketplace_info(row, counts, figures[row["listing_id"]], now)) for row in rows]


def marketplace_info(row: Mapping[str, Any], counts: dict[str, dict[str, int]], figures: dict[str, Any], now: datetime) -> w.MarketplaceInfo:
    """A listing's availability, pricing, instances and performance (``row``: its status, max_instances, pricing)."""
    count = counts.get(row["listing_id"], {"total": 0, "live": 0, "own": 0})
    return w.MarketplaceInfo(
        availability=w.Availability(
            available=row["status"] == "listed" and count["live"] < row["max_instances"],
            max_instances=row["max_instances"],
            current_instances=count["live"],
        ),
        pricing_info=w.Pricing.model_validate(row["pricing"]),
        customer_instances=count["own"],
        total_instances=count["total"],
        performance_metrics=performance(figures, now),
        **{k: row[k] for k in ("rating", "rating_count", "reputation") if k in row},
    )


def performance(figures: dict[str, Any], now: datetime) -> w.PerformanceMetrics:
    finished = figures["completed"] + figures["failed"]
    up = {"running": figures["running"], "down": figures["down"]}
    for state, since in figures["open"]:
        up[state] += billing.micros_between(since, now)
    measured = up["running"] + up["down"]
    mean = figures["mean_seconds"]
    return w.PerformanceMetrics(
        average_response_time=round(float(mean), 6) if mean is not None else None,
        success_rate=round(figures["completed"] / finished, 6) if finished else None,
        availability=round(up["running"] / measured, 6) if measured else None,
        tasks_measured=finished,
    )


async def unlist(ctx: CallContext, req: w.ListingRef) -> w.Unlisted:
    """Take a listing off the marketplace; refused (409, naming them) while it has live instances. History stays."""
    p, now = ctx.principal, ctx.clock.now()

    def op(conn: Connection) -> dict[str, Any]:
        row = market_ops.listing(conn, req.listing, p.tenant_id, listed_only=False, sees_all=p.is_admin)
        if row["tenant_id"] != p.tenant_id and not p.is_admin:
            raise PermissionDenied("only its publisher may unlist a listing", details={"listing": req.listing})
        live = [i["instance_id"] for i in market_ops.instances(conn, None, listing_id=row["listing_id"], limit=1000) if i["status"] in market_ops.LIVE]
        if live:
            raise Conflict(
                f"listing '{row['agent_name']}' has {len(live)} live instance(s); terminate them first",
                details={"listing": row["listing_id"], "live_instances": live},
            )
        market_ops.set_listing_status(conn, row["listing_id"], "unlisted", now)
        return row

    row = await ctx.store.write(op)
    return w.Unlisted(listing_id=row["listing_id"], status="unlisted")
