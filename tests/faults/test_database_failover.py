"""Fault: the hub's PostgreSQL primary crashes and its standby is promoted (issue 59, fault 1). A primary and a
synchronous streaming standby of the test's own; the hub names both, libpq's way
(``postgresql://…@primary,standby/…?target_session_attrs=read-write``). While an agent sends, the primary is killed
(``pg_ctl -m immediate``: a crash) and the standby promoted: the hub keeps its process, answers 503 with
``Retry-After`` while no server takes writes (never a 500), finds the new primary by itself, and every send it
acknowledged is there (the standby had each one before the hub was answered)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from ..conftest import ok
from ..hubproc import HubProcess
from .postgres_server import PostgresServer
from .steady_sends import SteadySends


def test_a_crashed_primary_fails_over_to_its_promoted_standby_and_loses_nothing(tmp_path: Path) -> None:
    primary = PostgresServer().start()
    standby = primary.standby()
    try:
        # Synchronous replication: a commit is answered once the standby has it, so the crash loses nothing answered.
        for statement in ("ALTER SYSTEM SET synchronous_standby_names = '*'", "SELECT pg_reload_conf()"):
            subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres", "-c", statement], check=True, capture_output=True)
        url = f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres?target_session_attrs=read-write"
        hub = HubProcess(tmp_path / "hub", database_url=url).start()
        try:
            _sends_survive_the_failover(hub, primary, standby)
        finally:
            hub.stop()
    finally:
        standby.remove()
        primary.remove()


def _sends_survive_the_failover(hub: HubProcess, primary: PostgresServer, standby: PostgresServer) -> None:
    with SteadySends(hub) as sends:
        time.sleep(1.0)
        before = sends.statuses[200]
        primary.stop("immediate")  # a crash
        time.sleep(1.0)  # (the failover's detection, as a cluster manager takes a moment to decide)
        standby.promote()
        recovered = sends.recovered_within(10)
        time.sleep(0.5)

    assert before > 0, "nothing was sent before the crash"
    assert hub.proc is not None and hub.proc.poll() is None, "the hub's process went away"
    assert sends.statuses[500] == 0 and sends.statuses[0] == 0, sends.statuses
    assert sends.statuses[503] > 0 and not sends.missing_retry_after, sends.statuses
    assert recovered is not None and recovered < 5.0, f"sends came back {recovered} s after the promotion"
    with hub.client() as admin:
        assert ok(admin.get("/ready"))
    assert set(sends.acknowledged) <= sends.stored(), "an acknowledged send was lost"
