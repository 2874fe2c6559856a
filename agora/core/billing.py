"""Billing arithmetic: exact, in Decimal, from whole microseconds of running time and counted requests.

Prices are per request, per minute or per hour of *running* time (paused and down time are never billed); ``hybrid``
is a base fee per running hour plus a price per request. Each cost is rounded once, to six places, half up, after the
exact product: the same usage always gives the same amount, however it is split into periods.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MICROS_PER_SECOND = 1_000_000
_PER_UNIT = {"per_minute": 60 * MICROS_PER_SECOND, "per_hour": 3600 * MICROS_PER_SECOND}
PLACES = Decimal("0.000001")


@dataclass(frozen=True)
class Cost:
    base_cost: Decimal
    usage_cost: Decimal
    task_cost: Decimal
    currency: str

    @property
    def total_cost(self) -> Decimal:
        return self.base_cost + self.usage_cost + self.task_cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_cost": self.base_cost, "usage_cost": self.usage_cost, "task_cost": self.task_cost,
            "total_cost": self.total_cost, "currency": self.currency,
        }  # fmt: skip


def _money(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


def cost(pricing: dict[str, Any], running_micros: int, requests: int) -> Cost:
    """What ``running_micros`` of running time and ``requests`` completed tasks cost under ``pricing``."""
    model, price = pricing["model"], Decimal(str(pricing["price"]))
    zero = Decimal(0).quantize(PLACES)
    base = usage = task = zero
    if model == "per_request":
        task = _money(price * requests)
    elif model in _PER_UNIT:
        usage = _money(price * running_micros / _PER_UNIT[model])
    elif model == "hybrid":
        base = _money(Decimal(str(pricing["base_fee"])) * running_micros / _PER_UNIT["per_hour"])
        task = _money(price * requests)
    else:
        raise ValueError(f"unknown pricing model {model!r}")
    return Cost(base, usage, task, pricing["currency"])


def micros_between(start: datetime, end: datetime) -> int:
    delta = end - start
    return max(0, (delta.days * 86_400 + delta.seconds) * MICROS_PER_SECOND + delta.microseconds)


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def next_month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The first instant of ``YYYY-MM`` and of the month after it (UTC)."""
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    return start, next_month_start(start)


def split_by_month(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at each month boundary, so that a usage period never spans two invoices."""
    pieces = []
    while True:
        boundary = next_month_start(start)
        if end <= boundary:
            pieces.append((start, end))
            return pieces
        pieces.append((start, boundary))
        start = boundary
