"""Billing arithmetic: exact, in Decimal, from whole microseconds of running time, counted requests and reported units.

Prices are per request, per minute or per hour of *running* time (paused and down time are never billed); ``hybrid``
is a base fee per running hour plus a price per request; ``per_unit`` is a price per request plus named units the
instance reports (e.g. tokens), each priced per ``per`` of them. Each cost is rounded once, to six places, half up,
after the exact product: the same usage always gives the same amount, however it is split into periods. A unit report
is a charge of its own, priced (and rounded) when it is accepted, so that the invoice and the credits ledger add up
the very same amounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

MICROS_PER_SECOND = 1_000_000
_PER_UNIT = {"per_minute": 60 * MICROS_PER_SECOND, "per_hour": 3600 * MICROS_PER_SECOND}
PLACES = Decimal("0.000001")
MILLIONTHS = 1_000_000  # money in whole millionths of its currency (PLACES): how the ledger keeps it, exact anywhere


@dataclass(frozen=True)
class Cost:
    base_cost: Decimal
    usage_cost: Decimal
    task_cost: Decimal
    currency: str
    unit_cost: Decimal = Decimal("0.000000")

    @property
    def total_cost(self) -> Decimal:
        return self.base_cost + self.usage_cost + self.task_cost + self.unit_cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_cost": self.base_cost, "usage_cost": self.usage_cost, "task_cost": self.task_cost,
            "unit_cost": self.unit_cost, "total_cost": self.total_cost, "currency": self.currency,
        }  # fmt: skip


def _money(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_UP)


def cost(pricing: dict[str, Any], running_micros: int, requests: int, unit_millionths: int = 0) -> Cost:
    """What ``running_micros`` of running time, ``requests`` completed tasks and unit reports charged
    ``unit_millionths`` in all cost under ``pricing``."""
    model, price = pricing["model"], Decimal(str(pricing["price"]))
    zero = Decimal(0).quantize(PLACES)
    base = usage = task = zero
    if model in ("per_request", "per_unit"):
        task = _money(price * requests)
    elif model in _PER_UNIT:
        usage = _money(price * running_micros / _PER_UNIT[model])
    elif model == "hybrid":
        base = _money(Decimal(str(pricing["base_fee"])) * running_micros / _PER_UNIT["per_hour"])
        task = _money(price * requests)
    else:
        raise ValueError(f"unknown pricing model {model!r}")
    return Cost(base, usage, task, pricing["currency"], from_millionths(unit_millionths))


def unit_charge(pricing: dict[str, Any], units: dict[str, int]) -> int:
    """What one unit report costs, in millionths of the currency: the exact sum over its units, rounded once.
    The caller has checked the units against the pricing (``unit_problem``)."""
    declared = pricing["units"]
    exact = sum((Decimal(str(declared[u]["price"])) * count / declared[u]["per"] for u, count in units.items()), Decimal(0))
    return to_millionths(_money(exact))


def unit_problem(pricing: dict[str, Any], units: dict[str, int]) -> tuple[str, str] | None:
    """Why a unit report does not fit the instance's pricing, as (reason, the unit), or None when it does."""
    declared = pricing.get("units") or {}
    for unit, count in units.items():
        if unit not in declared:
            return "unknown_unit", unit
        most = declared[unit].get("max_per_call")
        if most is not None and count > most:
            return "over_max_per_call", unit
    return None


def to_millionths(amount: Decimal) -> int:
    """Money as whole millionths."""
    return int(amount.quantize(PLACES, rounding=ROUND_HALF_UP) * MILLIONTHS)


def from_millionths(amount: int) -> Decimal:
    return (Decimal(amount) / MILLIONTHS).quantize(PLACES)


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


def expiring(rows: list[dict[str, Any]], now: datetime) -> list[tuple[dict[str, Any], int]]:
    """One customer's ledger in one currency, in order, replayed with each charge taking the soonest-expiring credits
    first (grants without an end last; credits past their end only when nothing else is left, as the balance allowed
    it before the expiry was written): the grants past their end at ``now`` not expired yet, and what is left of each
    (0 too: its expiry row says so, and it is not looked at again)."""
    buckets: list[list[Any]] = []  # [expires_at, left, row]
    expired = {r["idempotency_key"] for r in rows if r["kind"] == "expiry"}
    for row in rows:
        if row["kind"] in ("grant", "refund"):
            buckets.append([row.get("expires_at"), row["amount"], row])
        elif row["kind"] in ("debit", "expiry"):
            mine = [b for b in buckets if row["kind"] == "debit" or row["idempotency_key"] == _expiry_key(b[2])]
            _consume(mine, -row["amount"], row["created_at"])
    return [(b[2], b[1]) for b in buckets if b[0] is not None and b[0] <= now and _expiry_key(b[2]) not in expired]


def _expiry_key(grant: dict[str, Any]) -> str:
    return f"expiry:{grant['entry_id']}"


def _consume(buckets: list[list[Any]], amount: int, at: datetime) -> None:
    live = sorted((b for b in buckets if b[0] is None or b[0] > at), key=lambda b: (b[0] is None, b[0] or at, b[2]["entry_id"]))
    for bucket in live + [b for b in buckets if b not in live]:
        take = min(bucket[1], amount)
        bucket[1] -= take
        amount -= take
        if not amount:
            return
