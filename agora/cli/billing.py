"""``agora billing invoice|credits|grant|policy|report|budget``: invoices, prepaid credits, metered units, budgets."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import fail, table

app = typer.Typer(help="Invoices, prepaid credits and metered units.", no_args_is_help=True)
Customer = Annotated[str | None, typer.Option(help="Admin only: the customer (tenant id or name).")]


@hub_command(app, "invoice")
def invoice(hub: Hub, month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month).")] = None, customer: Customer = None) -> None:
    """A month's invoice: a line per instance, what credits paid and what is due."""
    result = hub.call("agora.billing.invoice", month=month, customer=customer)

    def show(r: dict[str, Any]) -> None:
        rows = [
            [line["instance_id"], line["agent_name"], f"{line['running_seconds']:.0f}s", line["requests"],
             " ".join(f"{u}={n}" for u, n in line["units"].items()), line["cost"]["total_cost"]]
            for line in r["lines"]
        ]  # fmt: skip
        table(f"invoice {r['month']} ({'closed' if r['closed'] else 'open'})", ["instance", "agent", "running", "requests", "units", "cost"], rows)
        typer.echo(f"total {r['total']} {r['currency']}   paid by credits {r['credits_applied']}   due {r['amount_due']}")

    hub.show(result, show)


@hub_command(app, "credits")
def credits(hub: Hub, customer: Customer = None, limit: Annotated[int, typer.Option(help="How many ledger rows.")] = 20) -> None:
    """Your prepaid credits: the balance per currency and the ledger, newest first."""
    result = hub.call("agora.billing.credits", customer=customer, limit=limit)

    def show(r: dict[str, Any]) -> None:
        balances = ", ".join(f"{amount} {currency}" for currency, amount in r["balances"].items()) or "none"
        typer.echo(f"balance {balances}   when spent: {r['when_exhausted']}")
        rows = [[e["entry_id"], e["created_at"][:19], e["kind"], e["amount"], e["currency"], e["source"], e["note"][:40]] for e in r["entries"]]
        table("ledger", ["#", "at", "kind", "amount", "currency", "source", "note"], rows)

    hub.show(result, show)


@hub_command(app, "grant")
def grant(
    hub: Hub,
    customer: Annotated[str, typer.Argument(help="The tenant (id or name).")],
    amount: Annotated[str, typer.Argument(help="e.g. 25.00")],
    key: Annotated[str, typer.Option("--key", help="Idempotency key: the same key grants once.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code.")] = "USD",
    refund: Annotated[bool, typer.Option(help="Record it as a refund.")] = False,
    note: Annotated[str, typer.Option(help="Why.")] = "",
    expires: Annotated[str | None, typer.Option(help="When what is left expires (ISO 8601, e.g. 2027-01-31T00:00:00Z).")] = None,
) -> None:
    """Admin: grant (or refund) a customer credits."""
    result = hub.call(
        "agora.billing.grant_credits", customer=customer, amount=amount, currency=currency, idempotency_key=key,
        kind="refund" if refund else "grant", note=note, expires_at=expires,
    )  # fmt: skip
    hub.show(result, lambda r: typer.echo(f"{'already granted' if r['replayed'] else 'granted'} {r['entry']['amount']} {r['entry']['currency']}; balance {r['balance']}"))


@hub_command(app, "policy")
def policy(hub: Hub, when_exhausted: Annotated[str, typer.Argument(help="invoice or pause.")], customer: Customer = None) -> None:
    """What happens when your credits are spent: the invoice takes the rest, or your instances pause."""
    hub.show(hub.call("agora.billing.credit_policy", when_exhausted=when_exhausted, customer=customer), lambda r: typer.echo(f"when spent: {r['when_exhausted']}"))


@hub_command(app, "report")
def report(
    hub: Hub,
    report_id: Annotated[str, typer.Argument(help="Unique per report: sending it again counts it once.")],
    units: Annotated[list[str], typer.Argument(help="unit=count pairs, e.g. input_tokens=1200 output_tokens=300.")],
) -> None:
    """As an instance's agent (its own token): report the units it used."""
    counted: dict[str, int] = {}
    for pair in units:
        name, _, count = pair.partition("=")
        if not count.isdigit():
            raise fail(f"'{pair}' is not unit=count")
        counted[name] = int(count)
    result = hub.call("agora.billing.report_usage", report_id=report_id, units=counted)
    hub.show(result, lambda r: typer.echo(f"{'already counted' if r['replayed'] else 'counted'}: {r['cost']} {r['currency']} ({r['paid_from_credits']} from credits)"))


@hub_command(app, "budget")
def budget(
    hub: Hub,
    limit: Annotated[str | None, typer.Option(help="Set the monthly limit (e.g. 200.00).")] = None,
    currency: Annotated[str, typer.Option(help="The budget's currency.")] = "USD",
    cap: Annotated[str | None, typer.Option(help="The most one instance may cost in a month.")] = None,
    thresholds: Annotated[str, typer.Option(help="Alert thresholds in percent, comma-separated.")] = "50,80,100",
    action: Annotated[str, typer.Option(help="At 100%: pause, refuse_new or notify.")] = "pause",
    notify: Annotated[str | None, typer.Option(help="An agent of yours told of each alert.")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the budget.")] = False,
    customer: Customer = None,
) -> None:
    """Your monthly budget: shown, or set with --limit (removed with --remove)."""
    if remove or limit is not None:
        try:
            marks = [int(t) for t in thresholds.split(",") if t.strip()]
        except ValueError:
            raise fail(f"--thresholds '{thresholds}' is not percentages separated by commas") from None
        result = hub.call(
            "agora.billing.set_budget", monthly_limit=None if remove else limit, currency=currency, instance_cap=cap,
            thresholds=marks, action=action, notify_agent=notify, customer=customer,
        )  # fmt: skip
    else:
        result = hub.call("agora.billing.budget", customer=customer)

    def show(r: dict[str, Any]) -> None:
        if r["monthly_limit"] is None:
            typer.echo(f"no budget; spent {r['spent']} this month ({r['month']})")
            return
        typer.echo(
            f"{r['month']}: spent {r['spent']} of {r['monthly_limit']} {r['currency']} ({r['percent']}%), {r['left']} left, "
            f"resets {r['resets_at'][:10]}; at 100%: {r['action']}{'; EXCEEDED' if r['exceeded'] else ''}"
        )
        for alert in r["alerts"]:
            typer.echo(f"  alert {alert['threshold']}% at {alert['at'][:19]} (spent {alert['spent']})")

    hub.show(result, show)
