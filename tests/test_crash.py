"""kill -9 in the middle of a 10,000-message send load: every acknowledged message is in its inbox after a restart."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
import pytest

from .conftest import call, fresh_postgres_url, ok, unique
from .hubproc import HubProcess

TOTAL = 10_000
WORKERS = 16
KILL_AFTER_ACKS = 3_000


async def _load(hub: HubProcess, token: str, recipient: str) -> tuple[set[str], set[int]]:
    """Send TOTAL numbered messages from WORKERS connections (singles and batches of 10); kill the hub mid-way.

    Returns the ids and numbers of the messages whose send was acknowledged (a 200 with their receipt).
    """
    acked_ids: set[str] = set()
    acked_numbers: set[int] = set()
    numbers = iter(range(TOTAL))
    killed = asyncio.Event()

    async def worker(index: int, client: httpx.AsyncClient) -> None:
        while not killed.is_set():
            batch = [n for _, n in zip(range(1 if index % 2 else 10), numbers)]
            if not batch:
                return
            messages = [{"to_agent": recipient, "content": {"n": n}, "idempotency_key": f"crash-{n}"} for n in batch]
            try:
                if len(batch) == 1:
                    response = await client.post("/agora/messaging/send", json=messages[0])
                    receipts = [response.json()] if response.status_code == 200 else []
                else:
                    response = await client.post("/agora/messaging/send_batch", json={"messages": messages})
                    receipts = response.json()["receipts"] if response.status_code == 200 else []
            except httpx.TransportError:
                return  # the hub is gone: this send was never acknowledged
            for n, receipt in zip(batch, receipts):
                acked_ids.add(receipt["message_id"])
                acked_numbers.add(n)
            if len(acked_numbers) >= KILL_AFTER_ACKS and not killed.is_set():
                killed.set()
                assert hub.proc is not None
                hub.proc.send_signal(signal.SIGKILL)  # mid-load: other workers have requests in flight

    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=WORKERS)
    async with httpx.AsyncClient(base_url=hub.url, headers=headers, timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(i, client) for i in range(WORKERS)))
    return acked_ids, acked_numbers


def _drain(client: httpx.Client) -> list[dict[str, Any]]:
    """Everything in the inbox, each message handed out once (a long visibility timeout, acked as we go)."""
    seen: list[dict[str, Any]] = []
    while True:
        batch = ok(call(client, "agora.messaging.receive", limit=500, visibility_timeout=600))["messages"]
        if not batch:
            return seen
        seen += batch
        ok(call(client, "agora.messaging.ack", up_to=batch[-1]["cursor"]))
        ok(call(client, "agora.messaging.ack", message_ids=[m["message_id"] for m in batch]))


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_kill_9_mid_load_loses_no_acknowledged_message(store, tmp_path, request):
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if store == "postgres" else None
    hub = HubProcess(tmp_path / "hub", database_url=url).start()
    try:
        with hub.client() as admin:
            sender = ok(call(admin, "agora.agents.register", agent_name=unique("sender")))
            receiver = ok(call(admin, "agora.agents.register", agent_name=unique("receiver")))
        acked_ids, acked_numbers = asyncio.run(_load(hub, sender["agent_token"], receiver["agent_id"]))
        assert hub.proc is not None and hub.proc.wait(10) == -signal.SIGKILL
        assert KILL_AFTER_ACKS <= len(acked_numbers) < TOTAL  # really interrupted, with real progress behind it
    finally:
        hub.stop()
    restarted = HubProcess(tmp_path / "hub", database_url=url, port=hub.port).start()
    try:
        with restarted.client(receiver["agent_token"]) as r:
            inbox = _drain(r)
    finally:
        restarted.stop()
    ids = [m["message_id"] for m in inbox]
    assert len(ids) == len(set(ids))  # nothing twice
    assert acked_ids <= set(ids)  # every acknowledged send survived
    numbers = [m["content"]["n"] for m in inbox]
    assert len(numbers) == len(set(numbers))  # idempotency keys: no number stored twice
    assert {m["from_agent"] for m in inbox} == {sender["agent_id"]}
    assert acked_numbers <= set(numbers)
