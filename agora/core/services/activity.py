"""agora.query.activity: the hub's activity over time, from every replica's stored buckets and this one's unwritten."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

from agora.core.activity import BUCKET_SECONDS, bucket_of, bucket_start, series
from agora.core.context import CallContext, Hub
from agora.store.ops import activity as activity_ops
from agora_sdk.wire.monitoring import Activity, ActivityPoint, ActivityRequest

from .acting import tenant_in_scope

log = logging.getLogger("agora.activity")
MAX_POINTS = 360  # a chart's width: longer windows have longer steps
RETENTION = timedelta(days=7)


async def read(ctx: CallContext, req: ActivityRequest) -> Activity:
    tenant = await tenant_in_scope(ctx, req.tenant)
    step = BUCKET_SECONDS * max(1, math.ceil(req.minutes * 60 / BUCKET_SECONDS / MAX_POINTS))
    until = bucket_start(ctx.clock.now())
    since = until - timedelta(seconds=step * (req.minutes * 60 // step - 1))
    stored = await ctx.store.read(activity_ops.read, tenant, since)
    buckets = [(row["bucket_start"], bucket_of(row)) for row in stored]
    buckets += ctx.hub.activity.unwritten(tenant, since)
    points = [
        ActivityPoint(at=at, **b.counts, p50_ms=b.percentile_ms(0.5), p95_ms=b.percentile_ms(0.95))
        for at, b in series(buckets, since, until, step)
    ]
    return Activity(since=since, until=until + timedelta(seconds=BUCKET_SECONDS), step_seconds=step, points=points)


async def flush(hub: Hub) -> None:
    """Write the buckets that are over (a housekeeping job); on failure they wait for the next round."""
    rows = hub.activity.take_finished()
    if not rows:
        return
    try:
        await hub.store.write(activity_ops.insert_buckets, rows)
    except Exception:
        hub.activity.restore(rows)
        raise


async def purge(hub: Hub) -> int:
    return await hub.store.write(activity_ops.purge, hub.clock.now() - RETENTION)
