"""``agora.marketplace.stats``: how many listings and agents the caller can find, by category, pricing model and
region (the chat's marketplace statistics)."""

from __future__ import annotations

from collections import Counter

from agora.core.context import CallContext
from agora.store.ops import catalog_stats as ops
from agora_sdk.wire import chat as w


async def stats(ctx: CallContext, req: w.CatalogStatsQuery) -> w.CatalogStats:
    p = ctx.principal
    rows = await ctx.store.read(ops.counts, p.tenant_id, p.is_admin, req.category)
    listings = [r for r in rows if r["kind"] == "listing"]

    def by(column: str, missing: str) -> dict[str, int]:
        counted: Counter[str] = Counter()
        for row in listings:
            counted[row[column] or missing] += row["n"]
        return dict(counted.most_common())

    return w.CatalogStats(
        category=req.category,
        listings=sum(r["n"] for r in listings),
        agents=sum(r["n"] for r in rows if r["kind"] == "agent"),
        listings_by_category=by("category", "general"),
        listings_by_pricing_model=by("pricing_model", "unspecified"),
        listings_by_region=by("region", "unspecified"),
    )
