"""agora.billing.* for spending: instances report the units they used, customers read their credits ledger and say
what happens when it runs out, set a monthly budget, and the hub's administrator grants credits and refunds."""

from datetime import date
from typing import Any

from agora.core.auth import Scope
from agora.core.services import budgets, credits
from agora_sdk.wire import budgets as bw
from agora_sdk.wire import credits as w

from ..tool import Tool

COMMON: dict[str, Any] = {"version": "1.0.0", "last_updated": date(2026, 11, 28)}

TOOLS = [
    Tool(
        name="agora.billing.report_usage",
        description=(
            "An instance's own agent reports units it used (e.g. input_tokens), as its listing's per_unit pricing names "
            "them. Each report id counts once, however often it is sent; the charge is paid from the customer's credits "
            "as far as they go. Unknown units and counts above the unit's max_per_call are refused."
        ),
        input_model=w.ReportUsage,
        output_model=w.UsageReported,
        handler=credits.report_usage,
        scopes=frozenset({Scope.usage_report.value}),
        new_work=False,  # a halted hub still takes the units of work in flight
        **COMMON,
    ),
    Tool(
        name="agora.billing.credits",
        description="The customer's prepaid credits: its balance per currency and its ledger (grants, refunds, debits), newest first.",
        input_model=w.CreditsRequest,
        output_model=w.Credits,
        handler=credits.credits,
        scopes=frozenset({Scope.billing_read.value}),
        read_only=True,
        **COMMON,
    ),
    Tool(
        name="agora.billing.credit_policy",
        description=(
            "What happens when the customer's credits are spent: 'invoice' (the rest goes on the monthly invoice) or "
            "'pause' (its billable instances are paused until credits are granted)."
        ),
        input_model=w.CreditPolicy,
        output_model=w.Credits,
        handler=credits.credit_policy,
        scopes=frozenset({Scope.billing_write.value}),
        new_work=False,  # spending controls are never frozen
        **COMMON,
    ),
    Tool(
        name="agora.billing.grant_credits",
        description=(
            "Grant (or refund) a customer credits, optionally until expires_at (what is left then expires; charges use "
            "the soonest-ending credits first). The idempotency key makes a grant sent twice one grant; the same key "
            "with another amount is refused."
        ),
        input_model=w.GrantCredits,
        output_model=w.CreditGranted,
        handler=credits.grant_credits,
        admin_only=True,
        new_work=False,
        **COMMON,
    ),
    Tool(
        name="agora.billing.set_budget",
        description=(
            "Set the customer's monthly budget for its instances (null removes it): a limit, an optional cap per instance, "
            "alert thresholds in percent (default 50, 80, 100: a hub event, a message to notify_agent, a console banner) "
            "and the action at 100%: 'pause' (billable instances paused, new ones and executions refused), 'refuse_new' "
            "or 'notify'. Refusals are budget_exceeded (402) with what is left and when it resets."
        ),
        input_model=bw.SetBudget,
        output_model=bw.Budget,
        handler=budgets.set_budget,
        scopes=frozenset({Scope.billing_write.value}),
        new_work=False,  # spending controls are never frozen
        **COMMON,
    ),
    Tool(
        name="agora.billing.budget",
        description="The customer's budget, what this month's invoice says it spent so far, what is left, when it resets, and the month's alerts.",
        input_model=bw.BudgetRequest,
        output_model=bw.Budget,
        handler=budgets.budget,
        scopes=frozenset({Scope.billing_read.value}),
        read_only=True,
        **COMMON,
    ),
]
