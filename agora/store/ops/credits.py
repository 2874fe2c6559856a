"""Prepaid credits and unit reports: the append-only ledger, each customer's balance, what it chose for when credits
run out, and the unit reports of per_unit instances. Amounts are signed millionths of their currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, String, bindparam, case, cast, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql

from ..schema import billing_balances, billing_ledger, billing_settings, market_instances, market_unit_reports
from ..prepared import Prepared
from .dialect import upsert_insert
from .pagination import decode_cursor, page

DEFAULT_POLICY = "invoice"


@lru_cache(maxsize=2)
def _ledger_statements(dialect: str) -> tuple[Prepared, Prepared, Prepared]:
    """A ledger row added unless its key was used (the row back, or none), a balance moved by an amount (made at the
    first row), and a ledger row added unless its key was used (how many: 1 or 0)."""
    kept = upsert_insert(dialect, billing_ledger).on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
    moved = upsert_insert(dialect, billing_balances)
    moved = moved.on_conflict_do_update(
        index_elements=["tenant_id", "currency"],
        set_={"balance": billing_balances.c.balance + moved.excluded.balance, "updated_at": moved.excluded.updated_at},
    )
    return Prepared(kept.returning(*billing_ledger.c)), Prepared(moved), Prepared(kept)


_BALANCE = Prepared(
    select(billing_balances.c.balance)
    .where(billing_balances.c.tenant_id == bindparam("tenant_id"), billing_balances.c.currency == bindparam("currency"))
    .with_for_update()
)


def append(conn: Connection, row: dict[str, Any]) -> dict[str, Any] | None:
    """Add one ledger row (tenant_id, currency, kind, amount, idempotency_key, source, instance_id, month, note,
    created_at) and move the balance with it; None, and nothing changed, when the key was used already."""
    added, moved, _ = _ledger_statements(conn.dialect.name)
    entry = added.first(conn, row)
    if entry is not None:
        moved.execute(conn, {"tenant_id": row["tenant_id"], "currency": row["currency"], "balance": row["amount"], "updated_at": row["created_at"]})
    return entry


def entry(conn: Connection, tenant_id: str, key: str) -> dict[str, Any] | None:
    stmt = select(billing_ledger).where(billing_ledger.c.tenant_id == tenant_id, billing_ledger.c.idempotency_key == key)
    found = conn.execute(stmt).mappings().first()
    return dict(found) if found else None


def balance(conn: Connection, tenant_id: str, currency: str) -> int | None:
    """The customer's balance in ``currency``, locked until the transaction ends (PostgreSQL); None when it never
    had credits in it (its charges go on the invoice)."""
    value = _BALANCE.scalar(conn, {"tenant_id": tenant_id, "currency": currency})
    return None if value is None else int(value)


def balances(conn: Connection, tenant_id: str) -> dict[str, int]:
    stmt = select(billing_balances.c.currency, billing_balances.c.balance).where(billing_balances.c.tenant_id == tenant_id)
    return {currency: amount for currency, amount in conn.execute(stmt.order_by(billing_balances.c.currency))}


def ledger_sums(conn: Connection, tenant_id: str) -> dict[str, int]:
    """Each balance as the ledger's rows add it up (what billing_balances must always agree with)."""
    stmt = (
        select(billing_ledger.c.currency, func.sum(billing_ledger.c.amount))
        .where(billing_ledger.c.tenant_id == tenant_id)
        .group_by(billing_ledger.c.currency)
    )
    return {currency: int(total) for currency, total in conn.execute(stmt)}


# A debit from a balance, as far as it goes, in one statement: SET sees the balance as it was, so ``last_paid`` keeps
# what this debit took (the whole amount, or what was left), and RETURNING hands it back.
_AS_FAR_AS_IT_GOES = case((billing_balances.c.balance < bindparam("b_amount"), billing_balances.c.balance), else_=bindparam("b_amount"))
_TAKE = Prepared(
    update(billing_balances)
    .where(
        billing_balances.c.tenant_id == bindparam("b_tenant_id"), billing_balances.c.currency == bindparam("b_currency"),
        billing_balances.c.balance > 0,
    )
    .values(
        balance=billing_balances.c.balance - _AS_FAR_AS_IT_GOES, last_paid=_AS_FAR_AS_IT_GOES, updated_at=bindparam("b_now")
    )
    .returning(billing_balances.c.last_paid)
)
_GIVE_BACK = Prepared(
    update(billing_balances)
    .where(billing_balances.c.tenant_id == bindparam("b_tenant_id"), billing_balances.c.currency == bindparam("b_currency"))
    .values(balance=billing_balances.c.balance + bindparam("b_amount"))
)


def charge(conn: Connection, row: dict[str, Any]) -> tuple[int, bool]:
    """Pay a charge of ``row["amount"]`` (positive) from the customer's credits, as far as they go, with a debit row
    for what they paid. Returns (paid, short): short when the credits paid part of it and ran out. A customer without
    credits in that currency (none ever, or spent) pays nothing here: the invoice asks for it (and, when the customer
    chose so, housekeeping pauses its instances)."""
    if row["amount"] <= 0:
        return 0, False
    where = {"b_tenant_id": row["tenant_id"], "b_currency": row["currency"]}
    paid = _TAKE.scalar(conn, {**where, "b_amount": row["amount"], "b_now": row["created_at"]})
    if not paid:
        return 0, False
    if not _ledger_statements(conn.dialect.name)[2].execute(conn, {**row, "kind": "debit", "amount": -paid}):
        _GIVE_BACK.execute(conn, {**where, "b_amount": paid})  # this charge was paid before (its key is used)
        return 0, False
    return paid, paid < row["amount"]


def due_expiries(conn: Connection, now: datetime) -> list[tuple[str, str]]:
    """(customer, currency) with a grant past its end whose expiry is not written yet."""
    grant, done = billing_ledger.alias("grant"), billing_ledger.alias("done")
    written = select(done.c.entry_id).where(
        done.c.tenant_id == grant.c.tenant_id, done.c.idempotency_key == literal("expiry:", String) + cast(grant.c.entry_id, String)
    )
    stmt = select(grant.c.tenant_id, grant.c.currency).where(grant.c.kind == "grant", grant.c.expires_at <= now, ~written.exists())
    return [(tenant, currency) for tenant, currency in conn.execute(stmt.distinct())]


def ledger_of(conn: Connection, tenant_id: str, currency: str) -> list[dict[str, Any]]:
    """The customer's ledger in one currency, oldest first."""
    stmt = select(billing_ledger).where(billing_ledger.c.tenant_id == tenant_id, billing_ledger.c.currency == currency)
    return [dict(r) for r in conn.execute(stmt.order_by(billing_ledger.c.entry_id)).mappings()]


def entries(conn: Connection, tenant_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The customer's ledger, newest first."""
    stmt = select(billing_ledger).where(billing_ledger.c.tenant_id == tenant_id)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(billing_ledger.c.entry_id < int(after))
    rows = [dict(r) for r in conn.execute(stmt.order_by(billing_ledger.c.entry_id.desc()).limit(limit + 1)).mappings()]
    return page(rows, limit, lambda r: r["entry_id"])


def paid_in(conn: Connection, tenant_id: str, month: str, currency: str) -> int:
    """What credits paid of the month's charges (the debits' sum, positive)."""
    stmt = select(func.coalesce(func.sum(billing_ledger.c.amount), 0)).where(
        billing_ledger.c.tenant_id == tenant_id, billing_ledger.c.month == month, billing_ledger.c.kind == "debit",
        billing_ledger.c.currency == currency,
    )  # fmt: skip
    return -int(conn.execute(stmt).scalar_one())


def policy(conn: Connection, tenant_id: str) -> str:
    stmt = select(billing_settings.c.when_exhausted).where(billing_settings.c.tenant_id == tenant_id)
    return conn.execute(stmt).scalar_one_or_none() or DEFAULT_POLICY


def set_policy(conn: Connection, tenant_id: str, when_exhausted: str, now: datetime) -> None:
    conn.execute(
        upsert_insert(conn, billing_settings)
        .values(tenant_id=tenant_id, when_exhausted=when_exhausted, updated_at=now)
        .on_conflict_do_update(index_elements=["tenant_id"], set_={"when_exhausted": when_exhausted, "updated_at": now})
    )


def exhausted_instances(conn: Connection, tenant_id: str | None) -> list[dict[str, Any]]:
    """Running instances whose customer chose ``pause`` and has spent its credits in the instance's currency."""
    b, s = billing_balances.c, billing_settings.c
    stmt = select(b.tenant_id, b.currency).join(billing_settings, s.tenant_id == b.tenant_id)
    stmt = stmt.where(s.when_exhausted == "pause", b.balance <= 0)
    if tenant_id is not None:
        stmt = stmt.where(b.tenant_id == tenant_id)
    spent = {(t, c) for t, c in conn.execute(stmt)}
    if not spent:
        return []
    i = market_instances.c
    running = select(market_instances).where(i.tenant_id.in_({t for t, _ in spent}), i.status == "running")
    return [
        dict(r) for r in conn.execute(running).mappings()
        if (r["tenant_id"], r["pricing"]["currency"]) in spent and billing_is_due(r["pricing"])
    ]  # fmt: skip


def billing_is_due(pricing: dict[str, Any]) -> bool:
    """Whether running an instance at this pricing costs anything."""
    prices = [pricing["price"], pricing.get("base_fee", 0), *(u["price"] for u in (pricing.get("units") or {}).values())]
    return any(Decimal(str(p)) > 0 for p in prices)


# -- unit reports -----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=2)
def _add_report_statement(dialect: str) -> Prepared:
    return Prepared(upsert_insert(dialect, market_unit_reports).on_conflict_do_nothing(index_elements=["instance_id", "report_id"]))


_REPORT = Prepared(
    select(market_unit_reports).where(
        market_unit_reports.c.instance_id == bindparam("instance_id"), market_unit_reports.c.report_id == bindparam("report_id")
    )
)


def add_report(conn: Connection, row: dict[str, Any]) -> bool:
    """Record a unit report; False, and nothing changed, when the instance sent this report id before."""
    return _add_report_statement(conn.dialect.name).execute(conn, row) == 1


def add_report_and_charge(conn: Connection, row: dict[str, Any], key: str, note: str) -> tuple[bool, int, bool] | None:
    """``add_report`` then ``charge`` of its ``charge`` (the ledger row's idempotency ``key`` and ``note``), in
    one statement on PostgreSQL (a metered execution's report and debit: one round trip, not three): (whether the
    report is new, what credits paid, short). None on SQLite, where statements cost no round trip: the caller runs
    the two."""
    if conn.dialect.name != "postgresql":
        return None
    found = _REPORT_AND_CHARGE.first(conn, {**row, "idempotency_key": key, "note": note})
    assert found is not None
    added, paid, debited = bool(found["added"]), int(found["paid"] or 0), bool(found["debited"])
    if paid and not debited:  # this charge's key was used before: give back what the balance lost
        _GIVE_BACK.execute(conn, {"b_tenant_id": row["tenant_id"], "b_currency": row["currency"], "b_amount": paid})
        paid = 0
    return added, paid, 0 < paid < row["charge"]


def report_and_charge(after: Any = None) -> tuple[Any, Any, Any]:
    """PostgreSQL: the unit report (unless sent before), then, if it is new and costs something, the debit from the
    balance as far as it goes and its ledger row: data-modifying CTEs (reported, taken, debited), each run once in
    the statement they join. Their parameters: a report's row (``market_unit_reports``' columns) with its debit's
    ``idempotency_key`` and ``note``. ``after``: a CTE of the statement whose rows the report waits for (a completion:
    no report when it completed nothing)."""
    r, b, ledger = market_unit_reports.c, billing_balances.c, billing_ledger.c
    given = {c.name: bindparam(c.name, type_=c.type) for c in market_unit_reports.c}
    reported = postgresql.insert(market_unit_reports)
    reported = reported.values(given) if after is None else reported.from_select(list(given), select(*given.values()).select_from(after))
    reported = reported.on_conflict_do_nothing(index_elements=["instance_id", "report_id"]).returning(r.charge).cte("reported")
    owed = case((b.balance < reported.c.charge, b.balance), else_=reported.c.charge)
    taken = (
        update(billing_balances)
        .where(b.tenant_id == bindparam("tenant_id"), b.currency == bindparam("currency"), b.balance > 0, reported.c.charge > 0)
        .values(balance=b.balance - owed, last_paid=owed, updated_at=bindparam("reported_at"))
        .returning(b.last_paid)
        .cte("taken")
    )
    fields = {
        "tenant_id": bindparam("tenant_id"), "currency": bindparam("currency"), "kind": literal("debit"), "amount": -taken.c.last_paid,
        "idempotency_key": bindparam("idempotency_key"), "source": literal("units"), "instance_id": bindparam("instance_id"),
        "month": bindparam("month"), "note": bindparam("note"), "created_at": bindparam("reported_at", type_=ledger.created_at.type),
    }  # fmt: skip
    debited = (
        postgresql.insert(billing_ledger)
        .from_select(list(fields), select(*fields.values()))
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(ledger.entry_id)
        .cte("debited")
    )
    return reported, taken, debited


def _report_and_charge() -> Prepared:
    reported, taken, debited = report_and_charge()
    return Prepared(select(
        exists(select(reported.c.charge)).label("added"), select(taken.c.last_paid).scalar_subquery().label("paid"),
        exists(select(debited.c.entry_id)).label("debited"),
    ))  # fmt: skip


_REPORT_AND_CHARGE = _report_and_charge()


def report(conn: Connection, instance_id: str, report_id: str) -> dict[str, Any] | None:
    return _REPORT.first(conn, {"instance_id": instance_id, "report_id": report_id})


def unit_totals(conn: Connection, instance_ids: list[str], month: str | None = None) -> dict[str, dict[str, Any]]:
    """Per instance (of one month): what its unit reports were charged, and the units they counted."""
    r = market_unit_reports.c
    stmt = select(r.instance_id, r.units, r.charge).where(r.instance_id.in_(instance_ids))
    if month is not None:
        stmt = stmt.where(r.month == month)
    totals: dict[str, dict[str, Any]] = {i: {"charge": 0, "units": {}} for i in instance_ids}
    for instance_id, units, charged in conn.execute(stmt):
        own = totals[instance_id]
        own["charge"] += charged
        for unit, count in units.items():
            own["units"][unit] = own["units"].get(unit, 0) + count
    return totals



def unit_charges_by_month(conn: Connection, tenant_id: str, first: str, last: str) -> list[tuple[str, str, int]]:
    """The customer's unit reports from month ``first`` to ``last``, charged per instance and month."""
    r = market_unit_reports.c
    rows = conn.execute(
        select(r.instance_id, r.month, func.sum(r.charge))
        .where(r.tenant_id == tenant_id, r.month >= first, r.month <= last)
        .group_by(r.instance_id, r.month)
    )
    return [(iid, month, int(total)) for iid, month, total in rows]
