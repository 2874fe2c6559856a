"""Fault: the hub's PostgreSQL server restarts under load (issue 59, fault 1). A server of the test's own (never the
suite's shared one) is stopped with ``pg_ctl -m fast`` while an agent sends: the hub keeps its process, refuses calls
with 503 and ``Retry-After`` while the database is away (never a 500), reconnects by itself, and every send it
acknowledged is there afterwards."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from ..conftest import call, ok, unique
from ..hubproc import HubProcess
from .postgres_server import PostgresServer


def test_a_database_restart_is_answered_503_and_loses_nothing(tmp_path: Path) -> None:
    server = PostgresServer().start()
    hub = HubProcess(tmp_path / "hub", database_url=server.url).start()
    try:
        with hub.client() as admin:
            sender = ok(call(admin, "agora.agents.register", agent_name=unique("sender")))
            sink = ok(call(admin, "agora.agents.register", agent_name=unique("sink")))
        statuses: Counter[int] = Counter()
        acknowledged: list[str] = []
        missing_retry_after: list[int] = []
        stop = threading.Event()

        def send() -> None:
            with hub.client(sender["agent_token"]) as client:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        answer = call(client, "agora.messaging.send", to_agent=sink["agent_id"], content=f"m{n}", idempotency_key=f"k{n}")
                    except httpx.TimeoutException:
                        statuses[0] += 1
                        continue
                    statuses[answer.status_code] += 1
                    if answer.status_code == 200:
                        acknowledged.append(answer.json()["message_id"])
                    elif answer.status_code == 503 and "retry-after" not in answer.headers:
                        missing_retry_after.append(n)
                    time.sleep(0.02)

        readiness: list[int] = []

        def watch() -> None:
            while not stop.is_set():
                readiness.append(httpx.get(hub.url + "/ready", timeout=10).status_code)
                time.sleep(0.1)

        sending, watching = threading.Thread(target=send), threading.Thread(target=watch)
        sending.start()
        watching.start()
        time.sleep(1.0)
        server.restart()  # stop (fast), 3 s away, start
        back = time.monotonic()
        recovered = None
        while time.monotonic() - back < 10 and recovered is None:
            before = statuses[200]
            time.sleep(0.1)
            if statuses[200] > before:
                recovered = time.monotonic() - back
        time.sleep(0.5)
        stop.set()
        sending.join(30)
        watching.join(30)

        assert hub.proc is not None and hub.proc.poll() is None, "the hub's process went away"
        assert statuses[500] == 0 and statuses[0] == 0, statuses
        assert statuses[503] > 0 and not missing_retry_after, statuses
        assert recovered is not None and recovered < 5.0, f"sends came back {recovered} s after the database"
        assert 503 in readiness and readiness[-1] == 200, readiness  # /ready said the database was away, then back
        with hub.client() as admin:
            stored = ok(call(admin, "agora.messaging.search", to_agent=sink["agent_id"], limit=500))["messages"]
        assert set(acknowledged) <= {m["message_id"] for m in stored}, "an acknowledged send was lost"
    finally:
        hub.stop()
        server.remove()
