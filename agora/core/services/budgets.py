"""Budgets: ``agora.billing.set_budget`` and ``agora.billing.budget``, the refusal of new instances and executions a
budget has no room for, and the job that raises alerts at thresholds and pauses instances at the limit.

Spent is what the month's invoice says so far, in the budget's currency (``billing.month_costs``). With ``pause`` or
``refuse_new`` a budget is a hard cap: creating an instance or running an execution is refused (``budget_exceeded``,
402, with what is left and when it resets) when nothing is left, or when one request at the instance's price would go
past what is left; a refusal changes nothing. ``pause`` also pauses the customer's billable running instances once the
limit is reached (and an instance past its own cap). Alerts are raised once per threshold and month: a hub event
(``budget_alert``), a message from the hub to the customer's chosen agent, and the console's banner.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection

from agora.core import billing
from agora.core.auth import DEFAULT_SCOPES, Principal, PrincipalKind
from agora.core.context import CallContext, Hub
from agora.core.events import announce, record
from agora.core.ids import new_id
from agora.core.services import billing as billing_service
from agora.store import tenancy
from agora.store.ops import agents as agent_ops
from agora.store.ops import budgets as budget_ops
from agora.store.ops import credits as credit_ops
from agora.store.ops import marketplace as market_ops
from agora_sdk.errors import AgoraError, BudgetExceeded
from agora_sdk.wire import budgets as w

log = logging.getLogger("agora.billing.budgets")
WATCHER = "hub:budgets"  # who pauses instances at the limit and tells the customer's agent (audit log, events)


def _money(amount: int) -> Decimal:
    return billing.from_millionths(amount)


def _view(tenant: str, budget: dict[str, Any] | None, spent: int, now: datetime) -> w.Budget:
    month = billing.month_of(now)
    if budget is None:
        return w.Budget(
            customer=tenant, monthly_limit=None, currency="USD", instance_cap=None, thresholds=[], action=w.BudgetAction.notify,
            notify_agent=None, month=month, spent=_money(spent), left=None, percent=None, resets_at=billing.next_month_start(now),
            alerts=[], exceeded=False,
        )  # fmt: skip
    limit = budget["monthly_limit"]
    alerts = budget["alerts"] if budget["alerts_month"] == month else []
    return w.Budget(
        customer=tenant, monthly_limit=_money(limit), currency=budget["currency"],
        instance_cap=None if budget["instance_cap"] is None else _money(budget["instance_cap"]), thresholds=budget["thresholds"],
        action=w.BudgetAction(budget["action"]), notify_agent=budget["notify_agent"], month=month, spent=_money(spent),
        left=_money(max(limit - spent, 0)), percent=round(spent * 100 / limit, 2) if limit else None,
        resets_at=billing.next_month_start(now), alerts=[w.Alert.model_validate(a) for a in alerts], exceeded=spent >= limit,
    )  # fmt: skip


def _spent(conn: Connection, tenant: str, currency: str, now: datetime) -> int:
    return sum(billing_service.month_costs(conn, tenant, now, currency).values())


async def set_budget(ctx: CallContext, req: w.SetBudget) -> w.Budget:
    now = ctx.clock.now()

    def op(conn: Connection) -> str:
        tenant = billing_service.tenant_billed(conn, ctx, req.customer)
        if req.monthly_limit is None:
            budget_ops.remove(conn, tenant)
            return tenant
        notify = agent_ops.resolve(conn, tenant, req.notify_agent)["agent_id"] if req.notify_agent else None
        budget_ops.put(conn, {
            "tenant_id": tenant, "monthly_limit": billing.to_millionths(req.monthly_limit), "currency": req.currency,
            "instance_cap": None if req.instance_cap is None else billing.to_millionths(req.instance_cap),
            "thresholds": req.thresholds, "action": req.action.value, "notify_agent": notify, "updated_at": now,
        })  # fmt: skip
        return tenant

    tenant = await ctx.store.write(op)
    await watch(ctx.hub, tenant)  # a lower limit may be passed already
    return await budget(ctx, w.BudgetRequest(customer=req.customer))


async def budget(ctx: CallContext, req: w.BudgetRequest) -> w.Budget:
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[str, dict[str, Any] | None, int]:
        tenant = billing_service.tenant_billed(conn, ctx, req.customer)
        found = budget_ops.get(conn, tenant)
        return tenant, found, _spent(conn, tenant, found["currency"] if found else "USD", now)

    return _view(*await ctx.store.read(op), now)


def refuse_over_budget(conn: Connection, tenant: str, now: datetime, inst: dict[str, Any] | None = None) -> None:
    """Raise ``budget_exceeded`` if the tenant's hard budget (or ``inst``'s cap) has no room for new work: nothing
    left, or less than one request at ``inst``'s price. In the caller's transaction, before it changes anything."""
    found = budget_ops.get(conn, tenant)
    if found is None or found["action"] == w.BudgetAction.notify.value:
        return
    currency = found["currency"]
    costs = billing_service.month_costs(conn, tenant, now, currency)
    adding = _request_price(inst["pricing"]) if inst is not None and inst["pricing"]["currency"] == currency else 0
    resets = billing.next_month_start(now)
    left = found["monthly_limit"] - sum(costs.values())
    if left <= 0 or adding > left:
        raise _exceeded("the monthly budget", found["monthly_limit"], left, currency, resets, {})
    cap = found["instance_cap"]
    if inst is not None and cap is not None and inst["pricing"]["currency"] == currency:
        own_left = cap - costs.get(inst["instance_id"], 0)
        if own_left <= 0 or adding > own_left:
            raise _exceeded(f"instance {inst['instance_id']}'s cap", cap, own_left, currency, resets, {"instance_id": inst["instance_id"]})


def _exceeded(what: str, limit: int, left: int, currency: str, resets: datetime, extra: dict[str, Any]) -> AgoraError:
    return BudgetExceeded(
        f"{what} of {_money(limit)} {currency} has {_money(max(left, 0))} left; it resets at {resets.isoformat()}",
        details={"limit": str(_money(limit)), "left": str(_money(max(left, 0))), "currency": currency, "resets_at": resets.isoformat(), **extra},
    )


def _request_price(pricing: dict[str, Any]) -> int:
    """What one more request costs at least (0 where time alone is billed)."""
    return billing.to_millionths(Decimal(str(pricing["price"]))) if pricing["model"] in ("per_request", "hybrid", "per_unit") else 0


# -- the watcher ------------------------------------------------------------------------------------------------------


async def watch(hub: Hub, tenant_id: str | None = None) -> None:
    """Housekeeping (every 15 s), and at once after a budget is set: raise the month's new alerts, and with ``pause``
    pause what the limit or a cap has been reached for."""
    now = hub.clock.now()
    with tenancy.hub_wide():
        budgets = await hub.store.read(budget_ops.all_budgets) if tenant_id is None else [await hub.store.read(budget_ops.get, tenant_id)]
    for found in budgets:
        if found is not None:
            with tenancy.hub_wide():
                await _watch_one(hub, found, now)


async def _watch_one(hub: Hub, found: dict[str, Any], now: datetime) -> None:
    tenant, currency, limit = found["tenant_id"], found["currency"], found["monthly_limit"]
    costs = await hub.store.read(billing_service.month_costs, tenant, now, currency)
    spent = sum(costs.values())
    percent = spent * 100 / limit if limit else (float("inf") if spent else 0.0)
    month = billing.month_of(now)
    earlier = found["alerts"] if found["alerts_month"] == month else []
    raised = {a["threshold"] for a in earlier}
    new = [t for t in found["thresholds"] if t <= percent and t not in raised]
    if new:
        await _alert(hub, found, month, earlier, new, spent, now)
    if found["action"] != w.BudgetAction.pause.value:
        return
    cap = found["instance_cap"]
    due = {iid for iid, cost in costs.items() if spent >= limit or (cap is not None and cost >= cap)}
    if due:
        running = await hub.store.read(lambda conn: market_ops.instances(conn, tenant, status="running", limit=10_000))
        chosen = [i for i in running if i["instance_id"] in due or (spent >= limit and credit_ops.billing_is_due(i["pricing"]) and i["pricing"]["currency"] == currency)]
        await billing_service.pause_for(hub, chosen, WATCHER, "its customer's budget is reached")


async def _alert(hub: Hub, found: dict[str, Any], month: str, earlier: list[dict[str, Any]], new: list[int], spent: int, now: datetime) -> None:
    tenant = found["tenant_id"]
    said = {"spent": str(_money(spent)), "limit": str(_money(found["monthly_limit"])), "currency": found["currency"], "month": month}
    alerts = earlier + [{"threshold": t, "at": now.isoformat(), "spent": said["spent"]} for t in new]

    def op(conn: Connection) -> list[Any] | None:
        if not budget_ops.record_alerts(conn, found, month, alerts):
            return None  # another replica raised them
        return [record(conn, tenant, "budget_alert", {"threshold": t, **said}, now) for t in new]

    events = await hub.store.write(op)
    if events is None:
        return
    await announce(hub, events)
    log.warning("budget alert", extra={"tenant_id": tenant, "thresholds": new, **said})
    if found["notify_agent"] is not None:
        principal = Principal(PrincipalKind.customer, WATCHER, tenant, DEFAULT_SCOPES)  # no agent: the hub's own voice
        content = {"thresholds": new, **said, "action": found["action"]}
        try:
            await hub.catalog.call(
                hub, principal, "agora.messaging.send",
                {"to_agent": found["notify_agent"], "content": content, "message_type": "budget_alert", "intent": "budget_alert"}, new_id("req"),
            )  # fmt: skip
        except AgoraError as exc:  # the agent was removed: the event and the log still say it
            log.warning("budget alert not delivered: %s", exc.message, extra={"tenant_id": tenant, "agent_id": found["notify_agent"]})
