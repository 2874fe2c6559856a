"""Prepaid credits and metered units: ``agora.billing.report_usage``, ``credits``, ``grant_credits`` and
``credit_policy``, the payment provider's grants, and the job that pauses the instances of customers whose credits ran
out (when they chose so).

A unit report is one transaction: the report (unique per instance and report id) and the debit it causes (its ledger
key names the report) commit together or not at all, so a report sent again after a crash, or sent twice, is counted
once. Grants are keyed by the caller (the administrator's idempotency key, the provider's event id) the same way.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from agora.core import billing
from agora.core.context import CallContext, Hub
from agora.core.services import billing as billing_service
from agora.observability import metrics
from agora.store import tenancy
from agora.store.ops import credits as credit_ops
from agora.store.ops import marketplace as market_ops
from agora_sdk.errors import Conflict, FailedPrecondition, InvalidArgument, PermissionDenied
from agora_sdk.wire import credits as w

log = logging.getLogger("agora.billing.credits")
PAUSER = "hub:credits"  # who pauses instances whose customer's credits ran out (the audit log and events say so)


def _not_an_instance() -> PermissionDenied:
    return PermissionDenied("only a marketplace instance's own agent reports its units", details={"reason": "not_an_instance"})


async def report_usage(ctx: CallContext, req: w.ReportUsage) -> w.UsageReported:
    """Units an instance used, checked against its listing's pricing, charged once per report id."""
    agent_id = ctx.principal.agent_id
    if agent_id is None:
        raise _not_an_instance()
    row, paid, replayed, short = await ctx.store.write(record_report, agent_id, req, ctx.clock.now())
    metrics.count_unit_report("replayed" if replayed else "accepted")
    if paid and not replayed:
        metrics.count_ledger_entry("debit")
    if short:
        await pause_exhausted(ctx.hub, row["tenant_id"])
    return w.UsageReported(
        report_id=row["report_id"], instance_id=row["instance_id"], units=row["units"], cost=billing.from_millionths(row["charge"]),
        currency=row["currency"], paid_from_credits=billing.from_millionths(paid), replayed=replayed,
    )  # fmt: skip


# Metered instances by their agent: what metering reads of one (its id, customer, listing and pricing) never changes,
# so a completion need not read it again. Agent ids are unique across databases (a copied store holds the same
# instances).
_METERED: OrderedDict[str, dict[str, Any]] = OrderedDict()
METERED_KEPT = 4096
_METERED_FIELDS = ("instance_id", "tenant_id", "listing_id", "pricing")


def _cached_instance(agent_id: str) -> dict[str, Any] | None:
    if (inst := _METERED.get(agent_id)) is not None:
        _METERED.move_to_end(agent_id)
    return inst


def _keep_instance(agent_id: str, found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The per_unit instance ``found`` (of ``agent_id``), kept for the next completion; None for any other."""
    if found is None or found["pricing"]["model"] != "per_unit":
        return None
    _METERED[agent_id] = {k: found[k] for k in _METERED_FIELDS}
    if len(_METERED) > METERED_KEPT:
        _METERED.popitem(last=False)
    return _METERED[agent_id]


def _result_request(task_id: str, units: Any) -> w.ReportUsage:
    """An execution result's units as report ``task:<task id>`` (malformed units refuse the completion)."""
    try:
        return w.ReportUsage(report_id=f"task:{task_id}", units=units, task_id=task_id)
    except ValidationError as exc:
        metrics.count_unit_report("malformed")
        raise InvalidArgument(
            "result.units must map each unit's name to a count (0 to 10^15)", details={"field": "result.units", "errors": exc.errors(include_url=False, include_context=False)}
        ) from None


def record_result_units(conn: Connection, agent_id: str, task_id: str, units: Any, now: datetime) -> None:
    """Units an execution's result reports (``{"units": {...}}``), as report ``task:<task id>``, if ``agent_id`` is a
    per_unit instance's agent (anyone else's result is only a result)."""
    inst = _cached_instance(agent_id) or _keep_instance(agent_id, market_ops.instance_of_agent(conn, agent_id))
    if inst is None:
        return
    _record(conn, inst, _result_request(task_id, units), now)
    metrics.count_unit_report("accepted")


async def result_report(ctx: CallContext, agent_id: str, task_id: str, units: Any, now: datetime) -> dict[str, Any] | None:
    """For a completion that reports units in one statement (PostgreSQL): the unit report's row with its debit's
    ledger key and note, checked against the listing's units; None when ``agent_id`` is no per_unit instance's."""
    inst = _cached_instance(agent_id)
    if inst is None:
        inst = _keep_instance(agent_id, await ctx.store.read(market_ops.instance_of_agent, agent_id))
        if inst is None:
            return None
    row, key, note = _report_row(inst, _result_request(task_id, units), now)
    return {**row, "idempotency_key": key, "note": note}


def record_report(conn: Connection, agent_id: str, req: w.ReportUsage, now: datetime) -> tuple[dict[str, Any], int, bool, bool]:
    """The report of the instance whose agent is ``agent_id``, and its debit, in the caller's transaction: (the
    report's row, what credits paid, whether it had been accepted before, whether credits fell short)."""
    inst = market_ops.instance_of_agent(conn, agent_id)
    if inst is None:
        raise _not_an_instance()
    return _record(conn, inst, req, now)


def _report_row(inst: dict[str, Any], req: w.ReportUsage, now: datetime) -> tuple[dict[str, Any], str, str]:
    """The report's row, checked against the instance's pricing and priced; its debit's ledger key and note."""
    iid, pricing = inst["instance_id"], inst["pricing"]
    if pricing["model"] != "per_unit":
        raise _refused(iid, FailedPrecondition, "not_per_unit", "this instance's pricing counts no units", {"model": pricing["model"]})
    problem = billing.unit_problem(pricing, req.units)
    if problem is not None:
        reason, unit = problem
        limit = (pricing["units"].get(unit) or {}).get("max_per_call")
        text = f"'{unit}' is not a unit of this listing" if reason == "unknown_unit" else f"{req.units[unit]} '{unit}' is more than one report may count ({limit})"
        raise _refused(iid, InvalidArgument, reason, text, {"unit": unit, "declared": sorted(pricing["units"]), "max_per_call": limit})
    row = {
        "instance_id": iid, "report_id": req.report_id, "tenant_id": inst["tenant_id"], "listing_id": inst["listing_id"],
        "units": req.units, "charge": billing.unit_charge(pricing, req.units), "currency": pricing["currency"],
        "task_id": req.task_id, "month": billing.month_of(now), "reported_at": now,
    }  # fmt: skip
    return row, f"units:{iid}:{req.report_id}", ", ".join(f"{n} {u}" for u, n in sorted(req.units.items()))


def _record(conn: Connection, inst: dict[str, Any], req: w.ReportUsage, now: datetime) -> tuple[dict[str, Any], int, bool, bool]:
    row, key, note = _report_row(inst, req, now)
    iid, tenant = row["instance_id"], row["tenant_id"]
    together = credit_ops.add_report_and_charge(conn, row, key, note)
    if together is not None:
        added, paid, short = together
    elif added := credit_ops.add_report(conn, row):
        paid, short = credit_ops.charge(conn, {
            "tenant_id": tenant, "currency": row["currency"], "amount": row["charge"], "idempotency_key": key, "source": "units",
            "instance_id": iid, "month": row["month"], "note": note, "created_at": now,
        })  # fmt: skip
    if added:
        return row, paid, False, short
    earlier = credit_ops.report(conn, iid, req.report_id)  # sent before: the first is the report
    assert earlier is not None
    if earlier["units"] != req.units:
        raise _refused(iid, Conflict, "changed", f"report '{req.report_id}' was accepted with other units", {"units": earlier["units"]})
    entry = credit_ops.entry(conn, tenant, key)
    return earlier, -entry["amount"] if entry else 0, True, False


def _refused(instance_id: str, error: type[Any], reason: str, message: str, details: dict[str, Any]) -> Exception:
    """A bad unit report: counted, logged (an instance sending them is misbehaving or misconfigured), refused."""
    metrics.count_unit_report(reason)
    log.warning("unit report refused", extra={"instance_id": instance_id, "reason": reason, **details})
    return error(message, details={"reason": reason, **details})


def _entry(row: dict[str, Any]) -> w.CreditEntry:
    return w.CreditEntry(**{**row, "amount": billing.from_millionths(row["amount"])})


async def credits(ctx: CallContext, req: w.CreditsRequest) -> w.Credits:
    def op(conn: Connection) -> tuple[str, dict[str, int], str, list[dict[str, Any]], str | None]:
        tenant = billing_service.tenant_billed(conn, ctx, req.customer)
        rows, cursor = credit_ops.entries(conn, tenant, req.limit, req.cursor)
        return tenant, credit_ops.balances(conn, tenant), credit_ops.policy(conn, tenant), rows, cursor

    tenant, balances, policy, rows, cursor = await ctx.store.read(op)
    return w.Credits(
        customer=tenant, balances={c: billing.from_millionths(a) for c, a in balances.items()},
        when_exhausted=w.WhenExhausted(policy), entries=[_entry(r) for r in rows], next_cursor=cursor,
    )  # fmt: skip


async def grant_credits(ctx: CallContext, req: w.GrantCredits) -> w.CreditGranted:
    """The administrator's grant or refund (the payment provider's webhook grants through this too)."""
    source = ctx.principal.key_id if ctx.principal.key_id.startswith("webhook:") else "admin"
    return await grant(ctx, req, source)


async def grant(ctx: CallContext, req: w.GrantCredits, source: str) -> w.CreditGranted:
    now = ctx.clock.now()
    if req.kind in (w.EntryKind.debit, w.EntryKind.expiry):
        raise InvalidArgument("credits are debited by charges and expire by their grant's end, not by a grant", details={"field": "kind"})
    if req.expires_at is not None and req.expires_at <= now:
        raise InvalidArgument("expires_at is in the past", details={"field": "expires_at"})

    def op(conn: Connection) -> tuple[dict[str, Any], bool, int]:
        tenant = billing_service.tenant_billed(conn, ctx, req.customer)
        row = {
            "tenant_id": tenant, "currency": req.currency, "kind": req.kind.value, "amount": billing.to_millionths(req.amount),
            "idempotency_key": req.idempotency_key, "source": source, "instance_id": None, "month": billing.month_of(now),
            "note": req.note, "created_at": now, "expires_at": req.expires_at,
        }  # fmt: skip
        added = credit_ops.append(conn, row)
        if added is None:
            earlier = credit_ops.entry(conn, tenant, req.idempotency_key)
            assert earlier is not None
            if (earlier["kind"], earlier["amount"], earlier["currency"]) != (row["kind"], row["amount"], row["currency"]):
                raise Conflict(
                    f"idempotency key '{req.idempotency_key}' was used for another entry",
                    details={"idempotency_key": req.idempotency_key, "entry_id": earlier["entry_id"]},
                )
            return earlier, True, credit_ops.balance(conn, tenant, req.currency) or 0
        return added, False, credit_ops.balance(conn, tenant, req.currency) or 0

    entry, replayed, balance = await ctx.store.write(op)
    if not replayed:
        metrics.count_ledger_entry(req.kind.value)
        log.info("credits %s", req.kind.value, extra={"tenant_id": entry["tenant_id"], "amount": str(req.amount), "currency": req.currency, "source": source})
    return w.CreditGranted(entry=_entry(entry), balance=billing.from_millionths(balance), replayed=replayed)


async def credit_policy(ctx: CallContext, req: w.CreditPolicy) -> w.Credits:
    def op(conn: Connection) -> None:
        credit_ops.set_policy(conn, billing_service.tenant_billed(conn, ctx, req.customer), req.when_exhausted.value, ctx.clock.now())

    await ctx.store.write(op)
    if req.when_exhausted is w.WhenExhausted.pause:
        await pause_exhausted(ctx.hub, ctx.principal.tenant_id if req.customer is None else None)
    return await credits(ctx, w.CreditsRequest(customer=req.customer, limit=1))


# -- credits run out --------------------------------------------------------------------------------------------------


async def pause_exhausted(hub: Hub, tenant_id: str | None = None) -> int:
    """Pause the running instances of customers who chose ``pause`` and whose credits in their instances' currency are
    spent (one customer's, or all): billing stops at once; granting credits lets them be resumed. Housekeeping runs
    it too, for charges made by usage periods closing. Returns how many it paused."""
    with tenancy.hub_wide():
        due = await hub.store.read(credit_ops.exhausted_instances, tenant_id)
    return await billing_service.pause_for(hub, due, PAUSER, "its customer's credits are spent")


async def expire(hub: Hub) -> None:
    """Housekeeping: what is left of each grant past its end expires, as a ledger row (``expiry:<grant's entry>``)."""
    now = hub.clock.now()
    with tenancy.hub_wide():
        due = await hub.store.read(credit_ops.due_expiries, now)
        for tenant, currency in due:
            made = await hub.store.write(_expire, tenant, currency, now)
            for row in made:
                metrics.count_ledger_entry("expiry")
                log.info("credits expired", extra={"tenant_id": tenant, "amount": str(billing.from_millionths(-row["amount"])), "currency": currency})


def _expire(conn: Connection, tenant: str, currency: str, now: datetime) -> list[dict[str, Any]]:
    held = credit_ops.balance(conn, tenant, currency) or 0  # locked: no charge moves it meanwhile
    made = []
    for grant, left in billing.expiring(credit_ops.ledger_of(conn, tenant, currency), now):
        amount = min(left, max(held, 0))
        row = credit_ops.append(conn, {
            "tenant_id": tenant, "currency": currency, "kind": "expiry", "amount": -amount, "idempotency_key": f"expiry:{grant['entry_id']}",
            "source": "expiry", "instance_id": None, "month": billing.month_of(now), "created_at": now, "expires_at": None,
            "note": f"what was left of grant {grant['entry_id']} ({grant['idempotency_key']}) at its end",
        })  # fmt: skip
        if row is not None:
            held -= amount
            made.append(row)
    return made
