"""Budgets (``agora.billing.set_budget``, ``agora.billing.budget``): a customer's monthly spending limit on
marketplace instances, an optional cap per instance, alerts at thresholds, and what happens at the limit.

What counts as spent is what the month's invoice says so far (time, requests and units, whether credits paid them or
not). A month is UTC's; the budget resets at its end.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from .common import Input, Output, UtcDatetime
from .marketplace import Money


Percent = Annotated[int, Field(ge=1, le=1000)]


class BudgetAction(StrEnum):
    pause = "pause"  # at 100%: billable running instances are paused; new instances and executions are refused
    refuse_new = "refuse_new"  # at 100%: new instances and executions are refused; running ones go on
    notify = "notify"  # alerts only


class SetBudget(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("monthly_limit",)

    monthly_limit: Money | None = Field(description="The most the customer's instances may cost in a month; null removes the budget.")
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="The budget's currency: instances priced in another are not counted.")
    instance_cap: Money | None = Field(None, description="The most one instance may cost in a month (null: no cap).")
    thresholds: list[Percent] = Field([50, 80, 100], min_length=1, max_length=10, description="Percentages of the limit that raise an alert.")
    action: BudgetAction = BudgetAction.pause
    notify_agent: str | None = Field(None, max_length=128, description="An agent of the customer's (id or name) told of each alert by message.")
    customer: str | None = Field(None, max_length=128, description="Admin only: whose budget.")

    @field_validator("thresholds")
    @classmethod
    def _percentages(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("thresholds are distinct percentages")
        return sorted(value)


class BudgetRequest(Input):
    customer: str | None = Field(None, max_length=128, description="Admin only: whose budget.")


class Alert(Output):
    threshold: int
    at: UtcDatetime
    spent: Decimal


class Budget(Output):
    customer: str
    monthly_limit: Decimal | None = Field(description="Null: no budget.")
    currency: str
    instance_cap: Decimal | None
    thresholds: list[int]
    action: BudgetAction
    notify_agent: str | None
    month: str
    spent: Decimal = Field(description="What the month's invoice says so far, in the budget's currency.")
    left: Decimal | None = Field(description="monthly_limit - spent, never below 0 (null: no budget).")
    percent: float | None
    resets_at: UtcDatetime = Field(description="When the month ends (UTC) and the budget starts again.")
    alerts: list[Alert] = Field(description="This month's alerts, in order.")
    exceeded: bool = Field(description="Spent has reached the limit.")
