"""Budgets: one row per customer that set one (amounts in millionths of its currency)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from ..prepared import Prepared
from ..schema import billing_budgets
from .dialect import upsert_insert

_ONE = Prepared(select(billing_budgets).where(billing_budgets.c.tenant_id == bindparam("tenant_id")))


def get(conn: Connection, tenant_id: str) -> dict[str, Any] | None:
    return _ONE.first(conn, {"tenant_id": tenant_id})


def all_budgets(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(billing_budgets).order_by(billing_budgets.c.tenant_id)).mappings()]


def put(conn: Connection, row: dict[str, Any]) -> None:
    """Set the customer's budget (its alerts of the month are kept: changing the limit does not alert again for
    thresholds already passed)."""
    settings = {k: row[k] for k in ("monthly_limit", "currency", "instance_cap", "thresholds", "action", "notify_agent", "updated_at")}
    stmt = upsert_insert(conn, billing_budgets).values(**row, alerts_month=None, alerts=[], version=0)
    conn.execute(stmt.on_conflict_do_update(index_elements=["tenant_id"], set_={**settings, "version": billing_budgets.c.version + 1}))


def remove(conn: Connection, tenant_id: str) -> None:
    conn.execute(delete(billing_budgets).where(billing_budgets.c.tenant_id == tenant_id))


def record_alerts(conn: Connection, budget: dict[str, Any], month: str, alerts: list[dict[str, Any]]) -> bool:
    """Save the month's alerts if the budget is still as ``budget`` shows it; False when another replica (or a
    change) came first."""
    moved = conn.execute(
        update(billing_budgets)
        .where(billing_budgets.c.tenant_id == budget["tenant_id"], billing_budgets.c.version == budget["version"])
        .values(alerts_month=month, alerts=alerts, version=budget["version"] + 1)
    )
    return moved.rowcount == 1
