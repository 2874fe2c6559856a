"""kill -9 in the middle of 2,000 metered reports: after a restart, and every report sent again (as an instance
whose answer was lost does), each report is one debit, the ledger's sum is the balance, and the invoice counts each
unit once."""

from __future__ import annotations

import asyncio
import random
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import call, fresh_postgres_url, ok, unique
from ..hubproc import HubProcess

TOTAL = 2_000
WORKERS = 12
KILL_AFTER_ACKS = 700
PRICING = {"model": "per_unit", "price": "0", "currency": "EUR", "units": {"tokens": {"price": "0.0007", "per": 1000}}}
GRANT = Decimal("100000")


def _metered(admin: httpx.Client) -> tuple[str, str, str]:
    """A customer with credits, its instance of a per-token listing on a node the test speaks for, and the instance's
    agent's key: (customer, instance, key)."""
    customer = unique("payer")
    key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=customer))["key"]
    ok(call(admin, "agora.hosting.register_node", name="ledger-node", capacity_cpu=100, capacity_memory_mb=100_000))
    listing = {"agent_name": unique("lst"), "repository": {"url": "https://example.com/a.git"}, "build_config": {"start_command": "true"}}
    lid = ok(call(admin, "agora.marketplace.publish", **listing, pricing=PRICING))["listing_id"]
    with httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=30) as buyer:
        iid = ok(call(buyer, "agora.marketplace.create_instance", agent_id=lid))["instance_id"]
    ok(call(admin, "agora.hosting.report", instance_id=iid, status="running"))
    ok(call(admin, "agora.billing.grant_credits", customer=customer, amount=str(GRANT), currency="EUR", idempotency_key="opening"))
    return customer, iid, ok(call(admin, "agora.hosting.credentials", instance_id=iid))["agent_token"]


async def _report(hub: HubProcess, token: str, counts: list[int], kill_after: int | None) -> dict[int, dict[str, Any]]:
    """Send every report (``units: {tokens: counts[i]}``, id ``r<i>``) from WORKERS connections; kill the hub after
    ``kill_after`` acknowledgements. The answers that came back, by report."""
    answers: dict[int, dict[str, Any]] = {}
    queue = iter(range(len(counts)))
    killed = asyncio.Event()

    async def worker(client: httpx.AsyncClient) -> None:
        for i in queue:
            if killed.is_set():
                return
            try:
                response = await client.post("/agora/billing/report_usage", json={"report_id": f"r{i}", "units": {"tokens": counts[i]}})
            except httpx.TransportError:
                return  # the hub is gone: this report was never acknowledged
            if response.status_code == 200:
                answers[i] = response.json()
            if kill_after is not None and len(answers) >= kill_after and not killed.is_set():
                killed.set()
                assert hub.proc is not None
                hub.proc.send_signal(signal.SIGKILL)  # mid-load: other workers have reports in flight

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=30, limits=httpx.Limits(max_connections=WORKERS)) as client:
        await asyncio.gather(*(worker(client) for _ in range(WORKERS)))
    return answers


def _ledger(client: httpx.Client, customer: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    first = ok(call(client, "agora.billing.credits", customer=customer, limit=500))
    entries, cursor = first["entries"], first["next_cursor"]
    while cursor:
        page = ok(call(client, "agora.billing.credits", customer=customer, limit=500, cursor=cursor))
        entries, cursor = entries + page["entries"], page["next_cursor"]
    return first, entries


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_kill_9_mid_metering_loses_and_doubles_no_debit(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if store == "postgres" else None
    rng = random.Random(9)
    counts = [rng.randint(1, 40_000) for _ in range(TOTAL)]
    hub = HubProcess(tmp_path / "hub", database_url=url).start()
    try:
        with hub.client() as admin:
            customer, iid, token = _metered(admin)
        before = asyncio.run(_report(hub, token, counts, KILL_AFTER_ACKS))
        assert hub.proc is not None and hub.proc.wait(10) == -signal.SIGKILL
        assert KILL_AFTER_ACKS <= len(before) < TOTAL  # really interrupted, with real progress behind it
    finally:
        hub.stop()
    restarted = HubProcess(tmp_path / "hub", database_url=url, port=hub.port).start()
    try:
        after = asyncio.run(_report(restarted, token, counts, None))  # every report again, the acknowledged ones too
        assert len(after) == TOTAL
        assert all(after[i]["replayed"] and after[i]["cost"] == answer["cost"] for i, answer in before.items())
        with restarted.client() as admin:
            shown, entries = _ledger(admin, customer)
            invoice = ok(call(admin, "agora.billing.invoice", customer=customer))
    finally:
        restarted.stop()
    debits = [e for e in entries if e["kind"] == "debit"]
    assert sorted(e["idempotency_key"] for e in debits) == sorted(f"units:{iid}:r{i}" for i in range(TOTAL))  # none lost, none twice
    charged = sum((Decimal(a["cost"]) for a in after.values()), Decimal(0))
    assert -sum((Decimal(e["amount"]) for e in debits), Decimal(0)) == charged > 0
    assert Decimal(shown["balances"]["EUR"]) == GRANT - charged
    [line] = invoice["lines"]
    assert line["units"] == {"tokens": sum(counts)} and Decimal(line["cost"]["unit_cost"]) == charged == Decimal(invoice["credits_applied"])
