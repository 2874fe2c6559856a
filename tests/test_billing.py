"""Billing arithmetic, exact to the cent's ten-thousandth, with a clock the test controls: every pricing model,
paused time never billed, a usage period cut at the month boundary, requests counted in the period they finished in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Connection, insert, select

from agora.core import billing
from agora.core.services import billing as billing_service
from agora.core.services.tasks import new_task_row
from agora.store import Store, open_store
from agora.store.ops import marketplace as market_ops
from agora.store.schema import market_usage, tasks

from .conftest import fresh_postgres_url

T0 = datetime(2026, 11, 30, 22, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
PRICES = {
    "per_request": {"model": "per_request", "price": "0.0015", "base_fee": "0", "currency": "EUR"},
    "per_minute": {"model": "per_minute", "price": "0.10", "base_fee": "0", "currency": "EUR"},
    "per_hour": {"model": "per_hour", "price": "1.20", "base_fee": "0", "currency": "EUR"},
    "hybrid": {"model": "hybrid", "price": "0.002", "base_fee": "0.50", "currency": "EUR"},
}


@pytest.mark.parametrize(
    ("model", "micros", "requests", "expected"),
    [
        ("per_request", 10**9, 7, {"task_cost": "0.010500"}),
        ("per_minute", 90_500_000, 7, {"usage_cost": "0.150833"}),  # 90.5 s at 0.10/min = 0.1508333…
        ("per_hour", 3_599_999_999, 0, {"usage_cost": "1.200000"}),  # a microsecond short of an hour rounds up
        ("per_hour", 1, 0, {"usage_cost": "0.000000"}),
        ("hybrid", 1_800_000_000, 3, {"base_cost": "0.250000", "task_cost": "0.006000"}),
    ],
)
def test_each_pricing_model_costs_exactly_what_it_says(model: str, micros: int, requests: int, expected: dict[str, str]) -> None:
    cost = billing.cost(PRICES[model], micros, requests)
    parts = {"base_cost": "0.000000", "usage_cost": "0.000000", "task_cost": "0.000000", "unit_cost": "0.000000", **expected}
    assert {k: str(v) for k, v in cost.as_dict().items() if k.endswith("_cost") and k != "total_cost"} == parts
    assert cost.total_cost == sum(Decimal(v) for v in parts.values()) and cost.currency == "EUR"


def test_a_period_is_cut_at_each_month_boundary() -> None:
    pieces = billing.split_by_month(datetime(2026, 12, 31, 23, tzinfo=timezone.utc), datetime(2027, 2, 1, 1, tzinfo=timezone.utc))
    assert [(a.isoformat(), b.isoformat()) for a, b in pieces] == [
        ("2026-12-31T23:00:00+00:00", "2027-01-01T00:00:00+00:00"),
        ("2027-01-01T00:00:00+00:00", "2027-02-01T00:00:00+00:00"),
        ("2027-02-01T00:00:00+00:00", "2027-02-01T01:00:00+00:00"),
    ]
    assert billing.micros_between(*pieces[1]) == 31 * 86_400 * 10**6


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Store]:
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    s = open_store(url, tmp_path)
    await s.start()
    yield s
    await s.close()


def _instance(conn: Connection, pricing: dict[str, Any]) -> dict[str, Any]:
    row = {
        "instance_id": "inst_00000000000000b1", "tenant_id": "customer-1", "listing_id": "lst_00000000000000b1",
        "listing_version": 1, "node_id": "node_00000000000000b1", "agent_id": "agent_00000000000000b1", "status": "running",
        "config": {}, "spec": {"listing_name": "calc"}, "pricing": pricing, "cpu_reserved": 1.0, "memory_reserved_mb": 128,
        "co_located_with": None, "pid": None, "restarts": 0, "error_count": 0, "last_error": None, "last_output": [],
        "cpu_percent": None, "memory_mb": None, "processes": None, "sampled_at": None, "period_state": None,
        "period_started_at": None, "created_at": T0, "started_at": T0, "stopped_at": None,
    }  # fmt: skip
    market_ops.insert_instance(conn, row)
    return row


def _completed(conn: Connection, agent_id: str, finished_at: datetime) -> None:
    row = new_task_row("customer-1", "add", {}, "tester", finished_at - timedelta(seconds=1), status="completed",
                       claimed_by=agent_id, started_at=finished_at - timedelta(seconds=1), finished_at=finished_at)  # fmt: skip
    conn.execute(insert(tasks).values(**row))


async def test_usage_periods_bill_running_time_only_and_split_by_month(store: Store) -> None:
    """Running 22:00–23:00, paused 23:00–23:30, running from 23:30 across midnight into December; a request finishes
    in each period. The clock is the test's: every figure is exact."""

    def story(conn: Connection) -> dict[str, Any]:
        inst = _instance(conn, PRICES["hybrid"])
        inst = market_ops.switch_period(conn, inst, "running", T0)
        _completed(conn, inst["agent_id"], T0 + HOUR / 2)
        inst = market_ops.switch_period(conn, inst, "paused", T0 + HOUR)
        _completed(conn, inst["agent_id"], T0 + HOUR + timedelta(minutes=10))  # finished while paused: still executed
        inst = market_ops.switch_period(conn, inst, "running", T0 + HOUR + timedelta(minutes=30))
        _completed(conn, inst["agent_id"], T0 + 2 * HOUR + timedelta(minutes=10))  # December, in the open period
        return inst

    inst = await store.write(story)
    now = T0 + 2 * HOUR + timedelta(minutes=30)  # 2026-12-01 00:30
    whole = await store.read(billing_service.usage, [inst], now)
    november = await store.read(billing_service.usage, [inst], now, "2026-11")
    december = await store.read(billing_service.usage, [inst], now, "2026-12")
    minutes = 60 * 10**6
    unmetered = {"unit_charge": 0, "units": {}}  # no unit reports (tests/test_credits.py)
    assert whole[inst["instance_id"]] == {"running": 120 * minutes, "paused": 30 * minutes, "down": 0, "requests": 3, **unmetered}
    assert november[inst["instance_id"]] == {"running": 90 * minutes, "paused": 30 * minutes, "down": 0, "requests": 2, **unmetered}
    assert december[inst["instance_id"]] == {"running": 30 * minutes, "paused": 0, "down": 0, "requests": 1, **unmetered}
    # hybrid: 0.50 per running hour + 0.002 per request
    assert billing_service.cost_of(inst, whole).total_cost == Decimal("1.000000") + Decimal("0.006000")
    assert billing_service.cost_of(inst, november).total_cost == Decimal("0.750000") + Decimal("0.004000")
    assert billing_service.cost_of(inst, december).total_cost == Decimal("0.250000") + Decimal("0.002000")

    # Stopping closes the open period; a later read (the clock moved on) gives the same final figures.
    await store.write(lambda conn: market_ops.switch_period(conn, {**inst, "period_state": "running", "period_started_at": T0 + HOUR + timedelta(minutes=30)}, None, now))
    stopped = {**inst, "period_state": None, "period_started_at": None}
    assert await store.read(billing_service.usage, [stopped], now + 5 * HOUR) == whole
    for model, expected in (("per_request", "0.004500"), ("per_minute", "12.000000"), ("per_hour", "2.400000")):
        assert billing_service.cost_of({**stopped, "pricing": PRICES[model]}, whole).total_cost == Decimal(expected), model


async def test_housekeeping_closes_long_periods_once_even_when_replicas_race(store: Store) -> None:
    """Periods open for an hour are closed and reopened; two replicas doing it at the same instant bill it once."""

    def opened(conn: Connection) -> dict[str, Any]:
        return market_ops.switch_period(conn, _instance(conn, PRICES["per_hour"]), "running", T0)

    inst = await store.write(opened)
    now = T0 + 2 * HOUR + timedelta(seconds=7)
    replica = SimpleNamespace(store=store, clock=SimpleNamespace(now=lambda: now))
    await asyncio.gather(*(billing_service.close_periods(replica) for _ in range(4)))  # type: ignore[arg-type]
    await billing_service.close_periods(replica)  # type: ignore[arg-type] # just reopened: nothing to close
    rows = await store.read(lambda conn: conn.execute(select(market_usage.c.started_at, market_usage.c.micros, market_usage.c.month)).all())
    assert sorted((r.started_at, r.micros, r.month) for r in rows) == [
        (T0, 2 * 3600 * 10**6, "2026-11"),  # 22:00 → midnight, then midnight → 00:00:07 in December
        (T0 + 2 * HOUR, 7 * 10**6, "2026-12"),
    ]
    reopened = await store.read(market_ops.instance, inst["instance_id"], None)
    assert (reopened["period_state"], reopened["period_started_at"]) == ("running", now)
    assert (await store.read(billing_service.usage, [reopened], now))[inst["instance_id"]]["running"] == (2 * 3600 + 7) * 10**6
