"""What instances cost: their bills, the customer's dashboard, and monthly invoices (``agora.billing.invoice``).

Every figure comes from the append-only usage periods (``market_usage``) plus the part of each instance's open period
that has passed, so a bill read twice at the same instant is the same bill, and a closed month never changes.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from agora.core import billing
from agora.core.auth import ALL_SCOPES, Principal, PrincipalKind
from agora.core.context import CallContext, Hub
from agora.core.ids import new_id
from agora.store.ops import credits as credit_ops
from agora.store.ops import keys as key_ops
from agora.store.ops import marketplace as market_ops
from agora_sdk.errors import Conflict, NotFound
from agora_sdk.wire import marketplace as w
from agora_sdk.wire.common import Empty

PERIOD = timedelta(hours=1)  # the longest a usage period stays open
log = logging.getLogger("agora.billing")


def usage(conn: Connection, insts: list[dict[str, Any]], now: datetime, month: str | None = None) -> dict[str, dict[str, Any]]:
    """Per instance: running and down microseconds, completed requests, and what its unit reports counted and were
    charged, up to ``now`` (within ``month``)."""
    ids = [i["instance_id"] for i in insts]
    totals = market_ops.usage_totals(conn, ids, month)
    for iid, reported in credit_ops.unit_totals(conn, ids, month).items():
        totals[iid]["unit_charge"], totals[iid]["units"] = reported["charge"], reported["units"]
    for inst in insts:
        start = inst["period_started_at"]
        if inst["period_state"] is None or start >= now:
            continue
        end = now
        if month is not None:
            first, after = billing.month_bounds(month)
            start, end = max(start, first), min(now, after)
            if start >= end:
                continue
        figures = totals[inst["instance_id"]]
        figures[inst["period_state"]] += billing.micros_between(start, end)
        figures["requests"] += market_ops.requests_between(conn, inst["agent_id"], start, end)
    return totals


async def close_periods(hub: Hub) -> None:
    """Housekeeping: usage periods open for an hour are closed and reopened in the same state, so that usage accrues
    as rows (a replica's restart or a clock jump never loses more than that) and a finished month is closed in rows."""
    now = hub.clock.now()
    for inst in await hub.store.read(market_ops.open_since, now - PERIOD):
        with contextlib.suppress(Conflict):  # another replica (or a pause, a report) moved it first
            await hub.store.write(market_ops.switch_period, inst, inst["period_state"], now)


async def pause_for(hub: Hub, insts: list[dict[str, Any]], who: str, why: str) -> int:
    """Pause these instances as the hub (``who`` names the part of it that decided, in the audit log and events),
    through the catalog like any pause; one that stopped or paused meanwhile is left. How many it paused."""
    paused = 0
    for inst in insts:
        principal = Principal(PrincipalKind.admin, who, inst["tenant_id"], ALL_SCOPES)
        try:
            await hub.catalog.call(hub, principal, "agora.marketplace.pause_instance", {"instance_id": inst["instance_id"]}, new_id("req"))
        except Conflict:
            continue
        paused += 1
        log.warning("instance paused: %s", why, extra={"instance_id": inst["instance_id"], "tenant_id": inst["tenant_id"]})
    return paused


def cost_of(inst: dict[str, Any], figures: dict[str, dict[str, Any]]) -> billing.Cost:
    own = figures[inst["instance_id"]]
    return billing.cost(inst["pricing"], own["running"], own["requests"], own["unit_charge"])


def bill(inst: dict[str, Any], figures: dict[str, dict[str, Any]]) -> w.BillingInfo:
    own, cost = figures[inst["instance_id"]], cost_of(inst, figures)
    return w.BillingInfo(
        pricing=w.Pricing.model_validate(inst["pricing"]),
        running_seconds=own["running"] / billing.MICROS_PER_SECOND,
        requests=own["requests"],
        cost=w.CostBreakdown(**cost.as_dict()),
        final=inst["status"] in ("stopped", "failed"),
    )


async def dashboard(ctx: CallContext, _req: Empty) -> w.Dashboard:
    """Seed 003's customer summary: instances by state, what they cost in all and this month."""
    now = ctx.clock.now()
    scope = ctx.principal.tenant_scope()

    def op(conn: Connection) -> dict[str, Any]:
        insts = market_ops.instances(conn, scope, limit=100_000)
        return {"insts": insts, "all": usage(conn, insts, now), "month": usage(conn, insts, now, billing.month_of(now))}

    got = await ctx.store.read(op)
    insts, currency = got["insts"], _currency(got["insts"])
    costs = {i["instance_id"]: cost_of(i, got["all"]) for i in insts}
    month_cost = sum((cost_of(i, got["month"]).total_cost for i in insts), Decimal(0))
    return w.Dashboard(
        total_instances=len(insts),
        running_instances=sum(1 for i in insts if i["status"] == "running"),
        paused_instances=sum(1 for i in insts if i["status"] == "paused"),
        total_cost=sum((c.total_cost for c in costs.values()), Decimal(0)),
        total_uptime_hours=sum(f["running"] for f in got["all"].values()) / billing.MICROS_PER_SECOND / 3600,
        current_month_cost=month_cost,
        currency=currency,
        recent_instances=[
            w.InstanceSummary(
                instance_id=i["instance_id"], agent_name=i["spec"]["listing_name"], status=i["status"],
                created_at=i["created_at"], total_cost=costs[i["instance_id"]].total_cost,
            )
            for i in insts[:10]
        ],
    )


def _currency(insts: list[dict[str, Any]]) -> str:
    return _one_currency([i["pricing"] for i in insts])


def _one_currency(pricings: list[dict[str, Any]]) -> str:
    currencies = {p["currency"] for p in pricings}
    return currencies.pop() if len(currencies) == 1 else ("mixed" if currencies else "USD")


def tenant_billed(conn: Connection, ctx: CallContext, customer: str | None) -> str:
    """The caller's own tenant, or (the admin's call) the customer it names; a customer naming another is a 404."""
    p = ctx.principal
    if customer is None:
        return p.tenant_id
    found = key_ops.resolve_tenant(conn, customer)
    if found is None or (not p.is_admin and found["tenant_id"] != p.tenant_id):
        raise NotFound(f"no customer '{customer}'", details={"customer": customer})
    return str(found["tenant_id"])


async def invoice(ctx: CallContext, req: w.InvoiceRequest) -> w.Invoice:
    """One line per instance that ran or was billed in the month; a month that is over never changes."""
    now = ctx.clock.now()
    month = req.month or billing.month_of(now)

    def op(conn: Connection) -> tuple[str, list[dict[str, Any]], dict[str, dict[str, Any]], int]:
        tenant = tenant_billed(conn, ctx, req.customer)
        insts = market_ops.instances(conn, tenant, limit=100_000)
        return tenant, insts, usage(conn, insts, now, month), credit_ops.paid_in(conn, tenant, month, _currency(insts))

    tenant, insts, figures, paid = await ctx.store.read(op)
    lines = [
        w.InvoiceLine(
            instance_id=i["instance_id"], agent_name=i["spec"]["listing_name"], pricing=w.Pricing.model_validate(i["pricing"]),
            running_seconds=own["running"] / billing.MICROS_PER_SECOND, requests=own["requests"], units=own["units"],
            cost=w.CostBreakdown(**cost_of(i, figures).as_dict()),
        )
        for i in insts
        if (own := figures[i["instance_id"]])["running"] or own["requests"] or own["units"]
    ]
    total = sum((line.cost.total_cost for line in lines), Decimal(0))
    credited = billing.from_millionths(paid)
    return w.Invoice(
        customer=tenant, month=month, currency=_currency(insts), lines=lines, total=total, credits_applied=credited,
        amount_due=total - credited, closed=billing.month_bounds(month)[1] <= now,
    )  # fmt: skip


def _months(last: str, count: int) -> list[str]:
    """``count`` months ending with ``last`` (YYYY-MM), oldest first."""
    year, month = int(last[:4]), int(last[5:])
    index = year * 12 + month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1) if i >= 1970 * 12]


MonthFigures = dict[tuple[str, str], dict[str, int]]  # per (instance, month): running micros, requests, unit charge


def monthly_figures(conn: Connection, tenant: str, first: str, last: str, now: datetime) -> tuple[MonthFigures, dict[str, dict[str, Any]]]:
    """What the tenant's invoices from month ``first`` to ``last`` would say, per instance and month (closed periods,
    the part of an open one that has passed, unit reports), and each of those instances' pricing."""
    figures: MonthFigures = {}

    def add(iid: str, month: str, state: str, micros: int, requests: int, unit_charge: int = 0) -> None:
        own = figures.setdefault((iid, month), {"running": 0, "requests": 0, "unit_charge": 0})
        own["running"] += micros if state == "running" else 0
        own["requests"] += requests
        own["unit_charge"] += unit_charge

    for row in market_ops.usage_by_month(conn, tenant, first, last):
        add(*row)
    for iid, month, charged in credit_ops.unit_charges_by_month(conn, tenant, first, last):
        add(iid, month, "running", 0, 0, charged)
    for inst in market_ops.open_periods(conn, tenant):
        for start, end in billing.split_by_month(inst["period_started_at"], max(now, inst["period_started_at"])):
            month = billing.month_of(start)
            if first <= month <= last and start < end:
                requests = market_ops.requests_between(conn, inst["agent_id"], start, end)
                add(inst["instance_id"], month, inst["period_state"], billing.micros_between(start, end), requests)
    return figures, market_ops.pricing_of(conn, sorted({iid for iid, _ in figures}))


def month_costs(conn: Connection, tenant: str, now: datetime, currency: str) -> dict[str, int]:
    """Per instance priced in ``currency``: what this month's invoice says it cost so far, in millionths."""
    month = billing.month_of(now)
    figures, pricing = monthly_figures(conn, tenant, month, month, now)
    return {
        iid: billing.to_millionths(billing.cost(pricing[iid], own["running"], own["requests"], own["unit_charge"]).total_cost)
        for (iid, _), own in figures.items()
        if pricing[iid]["currency"] == currency
    }


async def usage_series(ctx: CallContext, req: w.UsageRequest) -> w.UsageSeries:
    """Month by month, what invoices would say: each instance's running time and requests of the month (closed
    periods, plus the part of an open one that has passed) priced as its invoice line is, then added up."""
    now = ctx.clock.now()
    months = _months(req.until or billing.month_of(now), req.months)

    def op(conn: Connection) -> tuple[str, MonthFigures, dict[str, dict[str, Any]]]:
        tenant = tenant_billed(conn, ctx, req.customer)
        return tenant, *monthly_figures(conn, tenant, months[0], months[-1], now)

    tenant, figures, pricing = await ctx.store.read(op)
    series = {m: w.MonthUsage(month=m, instances=0, running_seconds=0.0, requests=0, cost=Decimal(0)) for m in months}
    for (iid, month), own in figures.items():
        if not (own["running"] or own["requests"] or own["unit_charge"]):
            continue  # not on that month's invoice
        point = series[month]
        point.instances += 1
        point.running_seconds += own["running"] / billing.MICROS_PER_SECOND
        point.requests += own["requests"]
        point.cost += billing.cost(pricing[iid], own["running"], own["requests"], own["unit_charge"]).total_cost
    return w.UsageSeries(customer=tenant, currency=_one_currency(list(pricing.values())), months=list(series.values()))
