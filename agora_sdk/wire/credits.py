"""Prepaid credits and metered units (``agora.billing.*``).

Credits are an append-only ledger per customer: grants (by the hub's administrator or a payment provider's webhook),
refunds, debits by what the customer's instances are charged, and expiries of what was left of a grant at its end
(charges use the soonest-expiring credits first). Every row has an idempotency key unique for its
customer, so a grant, a webhook event or a unit report counted twice is one row; a balance is the sum of the rows.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from .common import Cursor, Input, Limit, Listing, Output, UtcDatetime
from .marketplace import Money, UnitCount, UnitName

IdempotencyKey = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$", description="Printable ASCII, no spaces; the same key is the same entry.")
]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class EntryKind(StrEnum):
    grant = "grant"  # credits bought or given
    refund = "refund"  # credits given back for a charge
    debit = "debit"  # a charge paid from credits
    expiry = "expiry"  # what was left of a grant when it expired


class WhenExhausted(StrEnum):
    invoice = "invoice"  # what credits do not cover goes on the monthly invoice
    pause = "pause"  # the customer's running instances are paused until credits are granted


class ReportUsage(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("report_id", "units")

    report_id: IdempotencyKey = Field(description="Unique per instance: a report sent again is counted once.")
    units: dict[UnitName, UnitCount] = Field(min_length=1, max_length=20, description="Units used, by name, as the listing declares them.")
    task_id: str | None = Field(None, max_length=64, description="The task the units were used for, if any.")


class UsageReported(Output):
    report_id: str
    instance_id: str
    units: dict[str, int]
    cost: Decimal = Field(description="What the report is charged, priced when it was first accepted.")
    currency: str
    paid_from_credits: Decimal = Field(description="The part of the charge the customer's credits paid.")
    replayed: bool = Field(description="True when this report id had been accepted before: nothing was counted again.")


class GrantCredits(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("customer", "amount")

    customer: str = Field(min_length=1, max_length=128, description="The tenant (id or name) credited.")
    amount: Money = Field(gt=0)
    currency: Currency = "USD"
    idempotency_key: IdempotencyKey
    kind: EntryKind = Field(EntryKind.grant, description="grant or refund.")
    note: str = Field("", max_length=500)
    expires_at: UtcDatetime | None = Field(None, description="A grant's end: what is left of it then expires (charges use the soonest-expiring credits first).")


class CreditsRequest(Input):
    customer: str | None = Field(None, max_length=128, description="Admin only: whose credits.")
    limit: Limit = 50
    cursor: Cursor | None = None


class CreditEntry(Output):
    entry_id: int
    kind: EntryKind
    amount: Decimal = Field(description="Signed: a debit is negative.")
    currency: str
    idempotency_key: str
    source: str = Field(description="admin, webhook:stripe, units, usage or expiry.")
    instance_id: str | None
    month: str
    note: str
    created_at: UtcDatetime
    expires_at: UtcDatetime | None = None


class Credits(Listing):
    items_field: ClassVar[str] = "entries"

    customer: str
    balances: dict[str, Decimal] = Field(description="Per currency: the sum of the ledger's rows.")
    when_exhausted: WhenExhausted
    entries: list[CreditEntry] = Field(description="Newest first.")
    next_cursor: str | None = None


class CreditPolicy(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("when_exhausted",)

    when_exhausted: WhenExhausted
    customer: str | None = Field(None, max_length=128, description="Admin only: whose policy.")


class CreditGranted(Output):
    entry: CreditEntry
    balance: Decimal = Field(description="The customer's balance in that currency after it.")
    replayed: bool = Field(description="True when the idempotency key had been used: nothing was granted again.")
