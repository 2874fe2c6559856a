"""Fault: the hub's PostgreSQL server restarts under load (issue 59, fault 1). A server of the test's own (never the
suite's shared one) is stopped with ``pg_ctl -m fast`` while an agent sends: the hub keeps its process, refuses calls
with 503 and ``Retry-After`` while the database is away (never a 500), reconnects by itself, and every send it
acknowledged is there afterwards."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from ..hubproc import HubProcess
from .postgres_server import PostgresServer
from .steady_sends import SteadySends


def test_a_database_restart_is_answered_503_and_loses_nothing(tmp_path: Path) -> None:
    server = PostgresServer().start()
    hub = HubProcess(tmp_path / "hub", database_url=server.url).start()
    try:
        readiness: list[int] = []
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                readiness.append(httpx.get(hub.url + "/ready", timeout=10).status_code)
                time.sleep(0.1)

        watching = threading.Thread(target=watch)
        with SteadySends(hub) as sends:
            watching.start()
            time.sleep(1.0)
            server.restart()  # stop (fast), 3 s away, start
            recovered = sends.recovered_within(10)
            time.sleep(0.5)
            stop.set()
            watching.join(30)

        assert hub.proc is not None and hub.proc.poll() is None, "the hub's process went away"
        assert sends.statuses[500] == 0 and sends.statuses[0] == 0, sends.statuses
        assert sends.statuses[503] > 0 and not sends.missing_retry_after, sends.statuses
        assert recovered is not None and recovered < 5.0, f"sends came back {recovered} s after the database"
        assert 503 in readiness and readiness[-1] == 200, readiness  # /ready said the database was away, then back
        assert set(sends.acknowledged) <= sends.stored(), "an acknowledged send was lost"
    finally:
        hub.stop()
        server.remove()
