"""Prepaid credits and metered units (issue 58): unit reports counted once and checked against the listing's units,
a ledger whose every balance is the sum of its rows, invoices that reconcile with it to the millionth, credits that
run short paying what they can, the pause when they are spent, and a payment provider's signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, insert

from agora.core.auth import DEFAULT_SCOPES, Principal, PrincipalKind
from agora.core.services import billing as billing_service
from agora.core.services import credits as credit_service
from agora.store import Store
from agora.store.ops import credits as credit_ops
from agora.store.ops import marketplace as market_ops
from agora.store.schema import tenants
from agora_sdk.errors import Conflict, InvalidArgument
from agora_sdk.wire import credits as cw
from agora_sdk.wire import marketplace as mw

from .conftest import call, expect_error, fresh_postgres_url, new_tenant, ok, unique
from .hubproc import HubProcess
from .test_billing import HOUR, T0, _instance
from .test_billing import store  # noqa: F401 - the fixture: a fresh store of each engine
from .test_marketplace import listing, market_hub, running, settled

TOKENS = {"model": "per_unit", "price": "0.0001", "base_fee": "0", "currency": "EUR", "units": {
    "input_tokens": {"price": "0.003", "per": 1000, "max_per_call": 1_000_000},
    "output_tokens": {"price": "0.015", "per": 1000, "max_per_call": 1_000_000},
}}  # fmt: skip
CUSTOMER = "customer-1"  # test_billing's instance's tenant
SECRET = "whsec_test_0123456789abcdef"


def _exact(units: dict[str, int]) -> Decimal:
    """What a report costs, reckoned here from the listing's prices: exact, rounded once."""
    total = sum((Decimal(TOKENS["units"][u]["price"]) * n / TOKENS["units"][u]["per"] for u, n in units.items()), Decimal(0))
    return total.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


def _customer_instance(conn: Connection, pricing: dict[str, Any]) -> dict[str, Any]:
    """test_billing's instance, its customer a tenant of the hub (credits are granted to tenants)."""
    conn.execute(insert(tenants).values(tenant_id=CUSTOMER, name=CUSTOMER, created_at=T0))
    return _instance(conn, pricing)


def _context(store: Store, principal: Principal, now: Any) -> Any:
    hub = SimpleNamespace(store=store, clock=SimpleNamespace(now=lambda: now))
    return SimpleNamespace(hub=hub, store=store, clock=hub.clock, principal=principal)


def _agent(inst: dict[str, Any]) -> Principal:
    return Principal(PrincipalKind.agent, "key_instance", inst["tenant_id"], DEFAULT_SCOPES, agent_id=inst["agent_id"])


def _admin() -> Principal:
    return Principal(PrincipalKind.admin, "key_admin", "default", DEFAULT_SCOPES)


async def test_ten_thousand_random_charges_reconcile_with_the_ledger(store: Store) -> None:
    """10,000 unit reports of random sizes, paid from credits: the invoice's total, the ledger's debits and the
    test's own arithmetic agree to the millionth, and the cached balance is the ledger's sum."""
    rng = random.Random(58)
    inst = await store.write(lambda conn: market_ops.switch_period(conn, _customer_instance(conn, TOKENS), "running", T0))
    now = T0 + timedelta(minutes=5)
    admin = _context(store, _admin(), now)
    await credit_service.grant(admin, cw.GrantCredits(customer=CUSTOMER, amount=Decimal("1000000"), currency="EUR", idempotency_key="seed"), "admin")
    reports = [{"input_tokens": rng.randint(0, 50_000), "output_tokens": rng.randint(1, 9_999)} for _ in range(10_000)]

    def record(conn: Connection) -> list[tuple[dict[str, Any], int, bool, bool]]:  # as report_usage does, in one go
        return [credit_service.record_report(conn, inst["agent_id"], cw.ReportUsage(report_id=f"r{i}", units=r), now) for i, r in enumerate(reports)]

    recorded = await store.write(record)
    expected = sum((_exact(r) for r in reports), Decimal(0))
    assert sum(row["charge"] for row, *_ in recorded) == expected * 10**6
    assert all(paid == row["charge"] and not replayed and not short for row, paid, replayed, short in recorded)

    invoice = await billing_service.invoice(admin, mw.InvoiceRequest(month="2026-11", customer=CUSTOMER))
    [line] = invoice.lines
    assert line.units == {"input_tokens": sum(r["input_tokens"] for r in reports), "output_tokens": sum(r["output_tokens"] for r in reports)}
    assert line.cost.unit_cost == expected and line.cost.task_cost == Decimal(0)  # no task completed
    assert invoice.credits_applied == expected and invoice.amount_due == invoice.total - expected
    ledger = await store.read(credit_ops.ledger_sums, CUSTOMER)
    assert ledger == await store.read(credit_ops.balances, CUSTOMER) == {"EUR": (Decimal("1000000") - expected) * 10**6}

    agent = _context(store, _agent(inst), now)
    again = await credit_service.report_usage(agent, cw.ReportUsage(report_id="r17", units=reports[17]))  # a retry: counted once
    assert again.replayed and again.cost == again.paid_from_credits == _exact(reports[17])
    assert await store.read(credit_ops.ledger_sums, CUSTOMER) == ledger


async def test_credits_running_short_pay_what_they_can_and_bad_reports_change_nothing(store: Store) -> None:
    inst = await store.write(lambda conn: market_ops.switch_period(conn, _customer_instance(conn, TOKENS), "running", T0))
    now = T0 + timedelta(minutes=1)
    admin, agent = _context(store, _admin(), now), _context(store, _agent(inst), now)
    granted = await credit_service.grant(admin, cw.GrantCredits(customer=CUSTOMER, amount=Decimal("1"), currency="EUR", idempotency_key="g1"), "admin")
    assert (granted.balance, granted.replayed) == (Decimal("1.000000"), False)
    same = await credit_service.grant(admin, cw.GrantCredits(customer=CUSTOMER, amount=Decimal("1"), currency="EUR", idempotency_key="g1"), "admin")
    assert (same.replayed, same.balance, same.entry.entry_id) == (True, Decimal("1.000000"), granted.entry.entry_id)
    with pytest.raises(Conflict):
        await credit_service.grant(admin, cw.GrantCredits(customer=CUSTOMER, amount=Decimal("2"), currency="EUR", idempotency_key="g1"), "admin")

    costly = {"output_tokens": 26_000}  # 0.39 each
    paid = [(await credit_service.report_usage(agent, cw.ReportUsage(report_id=f"c{i}", units=costly))).paid_from_credits for i in range(4)]
    assert paid == [Decimal("0.390000"), Decimal("0.390000"), Decimal("0.220000"), Decimal("0.000000")]
    assert await store.read(credit_ops.balances, CUSTOMER) == {"EUR": 0}  # never below zero: the invoice takes the rest

    before = await store.read(credit_ops.ledger_sums, CUSTOMER)
    for report_id, units, error, reason in (
        ("c0", {"output_tokens": 1}, Conflict, "changed"),  # a report id is one report
        ("u1", {"images": 1}, InvalidArgument, "unknown_unit"),
        ("u2", {"input_tokens": 1_000_001}, InvalidArgument, "over_max_per_call"),
    ):
        with pytest.raises(error) as refused:
            await credit_service.report_usage(agent, cw.ReportUsage(report_id=report_id, units=units))
        assert refused.value.details["reason"] == reason
    assert await store.read(credit_ops.ledger_sums, CUSTOMER) == before
    invoice = await billing_service.invoice(admin, mw.InvoiceRequest(month="2026-11", customer=CUSTOMER))
    assert invoice.total == Decimal("1.560000") and invoice.credits_applied == Decimal("1.000000") and invoice.amount_due == Decimal("0.560000")


async def test_closing_usage_periods_debits_what_the_invoice_says_to_the_millionth(store: Store) -> None:
    """Running time at a price with an awkward quotient, closed in odd pieces: the month's debits add up to the
    month's time charge as the invoice rounds it (once), not to a sum of separately rounded pieces."""
    pricing = {"model": "per_minute", "price": "0.07", "base_fee": "0", "currency": "EUR"}
    now = T0 - 30 * HOUR  # 2026-11-29 16:00

    inst = await store.write(lambda conn: market_ops.switch_period(conn, _customer_instance(conn, pricing), "running", now))
    await credit_service.grant(_context(store, _admin(), now), cw.GrantCredits(customer=CUSTOMER, amount=Decimal(100), currency="EUR", idempotency_key="g"), "admin")
    for seconds in (7, 61, 13, 3599, 1, 29, 887):
        later = now + timedelta(seconds=seconds, microseconds=333_333)
        inst = await store.write(lambda conn, i=inst, t=later: market_ops.switch_period(conn, i, "running", t))
        now = later
    inst = await store.write(lambda conn: market_ops.switch_period(conn, inst, None, now))
    invoice = await billing_service.invoice(_context(store, _admin(), now), mw.InvoiceRequest(month="2026-11", customer=CUSTOMER))
    assert invoice.total > 0 and invoice.credits_applied == invoice.total and invoice.amount_due == 0
    assert (await store.read(credit_ops.balances, CUSTOMER))["EUR"] == (100 - invoice.total) * 10**6


async def test_what_is_left_of_a_grant_expires_at_its_end_and_the_soonest_ending_credits_go_first(store: Store) -> None:
    inst = await store.write(lambda conn: market_ops.switch_period(conn, _customer_instance(conn, TOKENS), "running", T0))
    admin = _context(store, _admin(), T0)
    day = timedelta(days=1)
    for key, amount, ends in (("a", 10, T0 + day), ("b", 5, None), ("c", 4, T0 + 2 * day)):
        await credit_service.grant(admin, cw.GrantCredits(customer=CUSTOMER, amount=Decimal(amount), currency="EUR", idempotency_key=key, expires_at=ends), "admin")
    with pytest.raises(InvalidArgument):
        await credit_service.grant(admin, cw.GrantCredits(customer=CUSTOMER, amount=Decimal(1), currency="EUR", idempotency_key="old", expires_at=T0 - day), "admin")
    agent = _context(store, _agent(inst), T0 + HOUR)
    spent = await credit_service.report_usage(agent, cw.ReportUsage(report_id="big", units={"output_tokens": 800_000}))  # 12.00
    assert spent.paid_from_credits == Decimal(12)  # from a (10, ends first), then c (2); b has no end: last

    async def expire_at(moment: Any) -> list[tuple[str, int]]:
        await credit_service.expire(SimpleNamespace(store=store, clock=SimpleNamespace(now=lambda: moment)))  # type: ignore[arg-type]
        rows = await store.read(credit_ops.ledger_of, CUSTOMER, "EUR")
        return [(r["idempotency_key"], r["amount"]) for r in rows if r["kind"] == "expiry"]

    assert await expire_at(T0 + day - timedelta(seconds=1)) == []  # not yet
    keys = {r["entry_id"]: r["idempotency_key"] for r in await store.read(credit_ops.ledger_of, CUSTOMER, "EUR")}
    a, c = (next(i for i, k in keys.items() if k == key) for key in ("a", "c"))
    assert await expire_at(T0 + day) == [(f"expiry:{a}", 0)]  # all of a was spent
    assert await expire_at(T0 + 3 * day) == [(f"expiry:{a}", 0), (f"expiry:{c}", -2 * 10**6)]  # c had 2 left
    assert await expire_at(T0 + 4 * day) == [(f"expiry:{a}", 0), (f"expiry:{c}", -2 * 10**6)]  # once
    assert await store.read(credit_ops.ledger_sums, CUSTOMER) == await store.read(credit_ops.balances, CUSTOMER) == {"EUR": 5 * 10**6}


# -- through the hub ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def market(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    yield from market_hub(tmp_path_factory.mktemp(f"credits-{request.param}"), url, AGORA_STRIPE_WEBHOOK_SECRET=SECRET)


def _metered_instance(admin: httpx.Client, buyer: httpx.Client) -> tuple[str, httpx.Client]:
    """A real instance of the calculator priced per token, bought by ``buyer``, and a client with its agent's key."""
    lid = ok(admin.post("/marketplace/agents", json=listing(pricing=TOKENS)))["listing_id"]
    iid = ok(buyer.post("/marketplace/instances", json={"agent_id": lid}))["instance_id"]
    running(buyer, iid)
    token = ok(call(admin, "agora.hosting.credentials", instance_id=iid))["agent_token"]
    return iid, httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_an_instance_reports_its_units_and_spent_credits_pause_it(market: HubProcess) -> None:
    with market.client() as admin, new_tenant(admin, market) as buyer:
        iid, agent = _metered_instance(admin, buyer)
        customer = ok(call(buyer, "agora.billing.credits"))["customer"]
        with agent:
            first = ok(call(agent, "agora.billing.report_usage", report_id="call-1", units={"input_tokens": 2000, "output_tokens": 100}))
            assert (first["cost"], first["paid_from_credits"], first["replayed"]) == ("0.007500", "0.000000", False)  # no credits yet
            assert ok(call(agent, "agora.billing.report_usage", report_id="call-1", units={"input_tokens": 2000, "output_tokens": 100}))["replayed"]
            for units, status, reason in (({"images": 3}, 400, "unknown_unit"), ({"input_tokens": 2_000_000}, 400, "over_max_per_call")):
                refused = expect_error(call(agent, "agora.billing.report_usage", report_id=unique("r"), units=units), status, "invalid_argument")
                assert refused["details"]["reason"] == reason
            expect_error(call(agent, "agora.billing.report_usage", report_id="neg", units={"input_tokens": -1}), 422, "invalid_argument")
            # The customer's own key is not the instance.
            refused = expect_error(call(buyer, "agora.billing.report_usage", report_id="x", units={"input_tokens": 1}), 403, "permission_denied")
            assert refused["details"]["reason"] == "not_an_instance"

            line = next(x for x in ok(call(buyer, "agora.billing.invoice"))["lines"] if x["instance_id"] == iid)
            assert line["units"] == {"input_tokens": 2000, "output_tokens": 100} and line["cost"]["unit_cost"] == "0.007500"

            # Credits bought, then spent: with 'pause' the instance stops running (and billing) at once.
            expect_error(call(buyer, "agora.billing.grant_credits", customer=customer, amount="5", idempotency_key="self"), 403, "permission_denied")
            ok(call(admin, "agora.billing.grant_credits", customer=customer, amount="0.01", currency="EUR", idempotency_key=unique("g")))
            assert ok(call(buyer, "agora.billing.credit_policy", when_exhausted="pause"))["when_exhausted"] == "pause"
            short = ok(call(agent, "agora.billing.report_usage", report_id="call-2", units={"output_tokens": 1000}))
            assert (short["cost"], short["paid_from_credits"]) == ("0.015000", "0.010000")
            settled(buyer, iid, "paused")
            shown = ok(call(buyer, "agora.billing.credits"))
            assert shown["balances"] == {"EUR": "0.000000"} and [e["kind"] for e in shown["entries"]] == ["debit", "grant"]
            invoice = ok(call(buyer, "agora.billing.invoice"))
            assert Decimal(invoice["credits_applied"]) == Decimal("0.01")
            assert Decimal(invoice["amount_due"]) == Decimal(invoice["total"]) - Decimal("0.01")

        from .test_cli import agora

        shown_cli = agora(market, "billing", "credits", "--customer", customer)
        assert shown_cli.returncode == 0 and "balance 0.000000 EUR" in shown_cli.stdout, shown_cli.stderr


def _signed(event: dict[str, Any], secret: str = SECRET, at: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A Stripe event as Stripe signs it: v1 = HMAC-SHA256(secret, "<t>.<payload>")."""
    body = json.dumps(event).encode()
    stamp = int(time.time()) if at is None else at
    signature = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return body, {"Stripe-Signature": f"t={stamp},v1={signature}", "Content-Type": "application/json"}


def _checkout(customer: str, cents: int, currency: str = "eur") -> dict[str, Any]:
    return {
        "id": f"evt_{unique('x').replace('-', '')}", "object": "event", "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_1", "object": "checkout.session", "amount_total": cents, "currency": currency,
                            "payment_status": "paid", "metadata": {"agora_customer": customer}}},
    }  # fmt: skip


def test_signed_payment_events_grant_credits_once_and_forged_or_stale_ones_nothing(market: HubProcess) -> None:
    with market.client() as admin, new_tenant(admin, market) as buyer, httpx.Client(base_url=market.url, timeout=30) as provider:
        customer = ok(call(buyer, "agora.billing.credits"))["customer"]
        event = _checkout(customer, 2550)
        body, headers = _signed(event)
        granted = ok(provider.post("/billing/webhooks/stripe", content=body, headers=headers))
        assert (granted["granted"], granted["currency"], granted["replayed"]) == ("25.50", "EUR", False)
        again = ok(provider.post("/billing/webhooks/stripe", content=body, headers=headers))  # Stripe retries
        assert again["replayed"] is True

        forged_body, forged = _signed(_checkout(customer, 999_999), secret="whsec_not_the_hubs")
        stale_body, stale = _signed(_checkout(customer, 999_999), at=int(time.time()) - 3600)
        tampered = json.dumps({**event, "id": "evt_other"}).encode()  # the first event's signature over other bytes
        for payload, sent in ((forged_body, forged), (stale_body, stale), (tampered, headers), (body, {"Content-Type": "application/json"})):
            refused = expect_error(provider.post("/billing/webhooks/stripe", content=payload, headers=sent), 400, "invalid_argument")
            assert refused["details"]["reason"] == "bad_signature"
        yen = _signed(_checkout(customer, 500, "jpy"))
        assert ok(provider.post("/billing/webhooks/stripe", content=yen[0], headers=yen[1]))["granted"] == "500"
        unknown = _signed(_checkout("no-such-customer", 100))
        expect_error(provider.post("/billing/webhooks/stripe", content=unknown[0], headers=unknown[1]), 404, "not_found")
        ignored = _signed({**event, "id": "evt_refund", "type": "charge.refunded"})
        assert ok(provider.post("/billing/webhooks/stripe", content=ignored[0], headers=ignored[1]))["ignored"] == "charge.refunded"

        shown = ok(call(buyer, "agora.billing.credits"))
        assert shown["balances"] == {"EUR": "25.500000", "JPY": "500.000000"}
        assert [(e["kind"], e["source"], e["amount"]) for e in shown["entries"]] == [("grant", "webhook:stripe", "500.000000"), ("grant", "webhook:stripe", "25.500000")]


def test_a_budget_alerts_refuses_past_its_limit_and_pauses_at_it(market: HubProcess) -> None:
    """Per request 0.002 USD against a 0.005 budget: 50% alerts (event, message, console), the third execution would
    pass the limit and is refused changing nothing, and a limit lowered to what is spent pauses the instance."""
    with market.client() as admin, new_tenant(admin, market) as buyer:
        lid = ok(admin.post("/marketplace/agents", json=listing(pricing={"model": "per_request", "price": "0.002", "base_fee": "0"})))["listing_id"]
        watcher = ok(call(buyer, "agora.agents.register", agent_name=unique("accounts")))
        shown = ok(call(buyer, "agora.billing.set_budget", monthly_limit="0.005", thresholds=[50, 100], action="pause", notify_agent=watcher["agent_name"]))
        assert (shown["monthly_limit"], shown["spent"], shown["left"], shown["exceeded"], shown["alerts"]) == ("0.005000", "0.000000", "0.005000", False, [])
        iid = ok(buyer.post("/marketplace/instances", json={"agent_id": lid}))["instance_id"]
        running(buyer, iid)
        add = {"endpoint": "add", "parameters": {"numbers": [1, 2]}}
        for _ in range(2):
            assert ok(buyer.post(f"/marketplace/instances/{iid}/execute", json=add))["status"] == "completed"
        ok(call(buyer, "agora.billing.set_budget", monthly_limit="0.005", thresholds=[50, 100], action="pause", notify_agent=watcher["agent_id"]))
        budget = ok(call(buyer, "agora.billing.budget"))
        assert (budget["spent"], budget["left"], [a["threshold"] for a in budget["alerts"]]) == ("0.004000", "0.001000", [50])

        refused = expect_error(buyer.post(f"/marketplace/instances/{iid}/execute", json=add), 402, "budget_exceeded")
        assert refused["details"]["left"] == "0.001000" and refused["details"]["resets_at"] == budget["resets_at"].replace("Z", "+00:00")
        executed = ok(call(buyer, "agora.marketplace.get_instance", instance_id=iid))["tasks_executed"]
        assert executed == 2 and ok(call(buyer, "agora.billing.budget"))["spent"] == "0.004000"  # nothing changed

        lowered = ok(call(buyer, "agora.billing.set_budget", monthly_limit="0.004", thresholds=[50, 100], action="pause", notify_agent=watcher["agent_id"]))
        assert lowered["exceeded"] is True and [a["threshold"] for a in lowered["alerts"]] == [50, 100]
        settled(buyer, iid, "paused")
        expect_error(buyer.post("/marketplace/instances", json={"agent_id": lid}), 402, "budget_exceeded")
        with market.client(watcher["agent_token"]) as accounts:
            told = ok(call(accounts, "agora.messaging.receive", limit=10))["messages"]
        assert [(m["from_agent"], m["message_type"], m["content"]["thresholds"]) for m in told] == [("system", "budget_alert", [50]), ("system", "budget_alert", [100])]


def test_an_execution_result_reports_units_in_its_completion(market: HubProcess) -> None:
    """The instance's agent (played by the test: the listing's process only sleeps) completes executions with
    ``units`` in the result: one report per task, in the completion; units the listing lacks refuse the completion."""
    sleeper = {"start_command": "python -c 'import time; time.sleep(600)'"}
    with market.client() as admin, new_tenant(admin, market) as buyer:
        lid = ok(admin.post("/marketplace/agents", json=listing(pricing=TOKENS, build_config=sleeper)))["listing_id"]
        iid = ok(buyer.post("/marketplace/instances", json={"agent_id": lid}))["instance_id"]
        settled(buyer, iid, "running")  # (its process never joins the hub: the test is its agent)
        token = ok(call(admin, "agora.hosting.credentials", instance_id=iid))["agent_token"]
        customer = ok(call(buyer, "agora.billing.credits"))["customer"]
        ok(call(admin, "agora.billing.grant_credits", customer=customer, amount="1", currency="EUR", idempotency_key=unique("g")))
        outcomes: list[dict[str, Any]] = []

        def serve(results: list[dict[str, Any]]) -> None:
            with market.client(token) as agent:
                claimed = ok(call(agent, "agora.task.claim", wait=20))
                for result in results:
                    answer = call(agent, "agora.task.update", task_id=claimed["task"]["task_id"], lease_token=claimed["lease"]["token"], status="completed", result=result)
                    outcomes.append({"http": answer.status_code, **answer.json()})

        for results in ([{"sum": 3, "units": {"input_tokens": 1500, "output_tokens": 20}}],
                        [{"sum": 3, "units": {"images": 2}}, {"sum": 3, "units": "many"}, {"sum": 3, "units": {"output_tokens": 40}}]):  # fmt: skip
            worker = threading.Thread(target=serve, args=(results,))
            worker.start()
            done = ok(buyer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [1, 2]}, "timeout": 30}))
            worker.join(30)
            assert done["status"] == "completed" and done["result"]["units"] == results[-1]["units"]
        assert [o["http"] for o in outcomes] == [200, 400, 400, 200]  # the refused completions left the task in progress
        assert outcomes[1]["error"]["details"]["reason"] == "unknown_unit" and outcomes[2]["error"]["details"]["field"] == "result.units"
        line = next(x for x in ok(call(buyer, "agora.billing.invoice"))["lines"] if x["instance_id"] == iid)
        assert line["units"] == {"input_tokens": 1500, "output_tokens": 60} and line["requests"] == 2
        assert line["cost"]["unit_cost"] == str(_exact({"input_tokens": 1500, "output_tokens": 20}) + _exact({"output_tokens": 40}))
        paid = ok(call(buyer, "agora.billing.credits"))  # each report debited with its completion, once
        debits = [(e["amount"], e["idempotency_key"].rsplit(":", 1)[0]) for e in paid["entries"] if e["kind"] == "debit"]
        assert sorted(debits) == sorted([(f"-{_exact({'input_tokens': 1500, 'output_tokens': 20})}", f"units:{iid}:task"), (f"-{_exact({'output_tokens': 40})}", f"units:{iid}:task")])
        assert Decimal(paid["balances"]["EUR"]) == 1 - _exact({"input_tokens": 1500, "output_tokens": 20}) - _exact({"output_tokens": 40})
