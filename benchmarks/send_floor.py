"""The floor under a durable single send on PostgreSQL: the statement the hub runs for one direct message, executed
by raw asyncpg, beside the same statement through the hub's store (``PostgresStore.write_statement``), in this
process, 8 at a time. The hub's whole HTTP send is measured beside them by the ``replicas`` scenario.

Both figures are this process's CPU per statement: what the hub's event loop pays for the database part of a send,
and what no Python code on asyncpg could go under."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import Connection, insert

from agora.core.services.messaging import _DIRECT_SEND, _RECIPIENT
from agora.store import prepared
from agora.store.ops import messages as message_ops
from agora.store.postgres import PostgresStore
from agora.store.schema import agents, tenants

CONCURRENCY = 8
ROUNDS = 5  # the least of these counts: this machine's noise only ever adds
AGENT = "agent_00000000000000f1"


def measure(database_url: str, sends: int) -> tuple[float, float]:
    """(µs of CPU per send through the store, µs per send by raw asyncpg), each the least of ``ROUNDS`` rounds."""
    return asyncio.run(_measure(database_url, sends))


async def _measure(url: str, sends: int) -> tuple[float, float]:
    store = PostgresStore(url, pg_pool_size=CONCURRENCY)
    await store.start()
    numbers = itertools.count()
    now = datetime.now(timezone.utc)
    try:
        await store.write(_agent, now)

        def send(conn: Connection) -> Any:
            n = next(numbers)
            draft = {
                "message_id": f"msg_{n:024x}", "kind": "direct", "sender_id": "system", "topic": None, "message_type": "info",
                "performative": None, "intent": None, "priority": 2, "content": {"text": "hello", "n": n}, "correlation": None,
                "conversation_id": None, "expected": None, "context": {}, "idempotency_key": None, "created_at": now,
                "expires_at": None, "reply_due_at": None,
            }  # fmt: skip
            return message_ops.send_direct(conn, _RECIPIENT[True, False], _DIRECT_SEND[True, False, False], {"ref": AGENT, "tenant_id": None}, draft, now, None)

        sql, values = await _statement_of(store, send)
        through_store = await _least(lambda: store.write_statement(send), sends)
        at = next(i for i, v in enumerate(values) if isinstance(v, str) and v.startswith("msg_"))
        pool = await asyncpg.create_pool(url.replace("postgresql+asyncpg", "postgresql"), min_size=CONCURRENCY, max_size=CONCURRENCY)

        async def raw() -> None:
            row = list(values)
            row[at] = f"msg_{next(numbers):024x}"
            async with pool.acquire() as conn:
                await conn.fetchrow(sql, *row)

        try:
            floor = await _least(raw, sends)
        finally:
            await pool.close()
        return through_store, floor
    finally:
        await store.close()


async def _statement_of(store: PostgresStore, send: Callable[[Connection], Any]) -> tuple[str, list[Any]]:
    """The text and the values the driver gets for one send."""
    captured: list[tuple[str, list[Any]]] = []
    driver = prepared._pg  # noqa: SLF001

    def spy(conn: Connection, method: str, sql: str, values: list[Any]) -> Any:
        captured.append((sql, list(values)))
        return driver(conn, method, sql, values)

    prepared._pg = spy  # noqa: SLF001
    try:
        await store.write_statement(send)
    finally:
        prepared._pg = driver  # noqa: SLF001
    return captured[0]


def _agent(conn: Connection, now: datetime) -> None:
    conn.execute(insert(tenants).values(tenant_id="floor", name="floor", created_at=now))
    conn.execute(insert(agents).values(
        agent_id=AGENT, tenant_id="floor", agent_name="floor-receiver", service_tier="free", status="active",
        description="", capabilities=[], metadata={}, search_text="", registered_at=now, updated_at=now,
    ))  # fmt: skip


async def _least(call: Callable[[], Awaitable[Any]], sends: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    await asyncio.gather(*(worker(sends // CONCURRENCY // 4) for _ in range(CONCURRENCY)))  # warm: statements prepared
    rounds = []
    for _ in range(ROUNDS):
        started = time.process_time()
        await asyncio.gather(*(worker(sends // CONCURRENCY) for _ in range(CONCURRENCY)))
        rounds.append((time.process_time() - started) * 1e6 / (sends // CONCURRENCY * CONCURRENCY))
    return min(rounds)
