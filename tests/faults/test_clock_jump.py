"""Fault: one replica's wall clock is wrong, then jumps (issue 59, fault 6). Two replicas on one PostgreSQL database;
the second runs under libfaketime (Debian's ``faketime``), its wall clock 5 minutes ahead from the start, then
stepped to 5 minutes behind while it runs (its monotonic clock left alone, as a clock step leaves it). The hub's time
is the database's, carried forward by the monotonic clock (``agora/core/clock.py``), so neither replica takes a lease
for expired early, nor an agent's heartbeat for stale, and what each writes is stamped with the same time."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ..conftest import call, fresh_postgres_url, ok, unique
from ..hubproc import HubProcess

FAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
LEASE = 20  # seconds: far shorter than the jumps


def test_a_replica_whose_clock_jumps_takes_no_lease_early_and_stamps_the_databases_time(tmp_path: Path, postgres_url: str) -> None:
    if not FAKETIME.exists():
        pytest.skip("needs Debian's faketime package (libfaketime), which .ci/run installs")
    offset = tmp_path / "offset"
    offset.write_text("+5m\n")  # read again at every clock reading (FAKETIME_NO_CACHE)
    url = fresh_postgres_url(postgres_url)
    wrong = {
        "LD_PRELOAD": str(FAKETIME), "FAKETIME_TIMESTAMP_FILE": str(offset), "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }  # fmt: skip
    right = HubProcess(tmp_path / "right", database_url=url).start()
    ahead = HubProcess(tmp_path / "ahead", database_url=url, env=wrong).start()
    try:
        with right.client() as admin:
            worker = ok(call(admin, "agora.agents.register", agent_name=unique("worker"), capabilities=["crunch"]))
            other = ok(call(admin, "agora.agents.register", agent_name=unique("other"), capabilities=["crunch"]))
            task = ok(call(admin, "agora.task.assign", task_type="job", required_capabilities=["crunch"]))["task_id"]
        with right.client(worker["agent_token"]) as client:
            claimed = ok(call(client, "agora.task.claim", lease_seconds=LEASE))
        assert claimed["task"]["task_id"] == task

        for step in ("+5m", "-5m"):  # ahead from the start, then stepped back while it runs
            offset.write_text(f"{step}\n")
            time.sleep(1.5)  # three rounds of every replica's lease expiry job
            with ahead.client(other["agent_token"]) as client:
                assert ok(call(client, "agora.task.claim", wait=0)).get("task") is None, f"a lease was taken early at {step}"
                stamped = ok(call(client, "agora.messaging.send", to_agent=worker["agent_id"], content=step))
            with right.client() as admin:
                still = ok(call(admin, "agora.task.get", task_id=task))
                assert (still["status"], still["claimed_by"]) == ("in_progress", worker["agent_id"]), step
                assert ok(call(admin, "agora.agents.get", agent=worker["agent_id"]))["status"] != "offline", step
            assert abs(datetime.fromisoformat(stamped["timestamp"]) - datetime.now(UTC)) < timedelta(seconds=30), step
        with right.client(worker["agent_token"]) as client:  # the lease is the worker's to the end
            ok(call(client, "agora.task.update", task_id=task, lease_token=claimed["lease"]["token"], status="completed"))
    finally:
        ahead.stop()
        right.stop()


async def test_the_clock_takes_the_databases_time_first_then_never_goes_back_nor_trusts_a_slow_reading() -> None:
    from agora.core.clock import Clock, ticks

    readings: list[tuple[float, float]] = []  # (seconds off the real time, round trip) of the server's next answers

    class Postgres:
        dialect = "postgresql"

        async def read(self, _op: object, clock: object) -> tuple[float, datetime, float]:
            off, round_trip = readings.pop(0)
            answered = ticks()
            return answered - round_trip, datetime.now(UTC) + timedelta(seconds=off), answered

    clock, store = Clock(), Postgres()
    readings.append((-300, 2.0))  # the first reading is taken however slow: the machine's own clock may be 5 min off
    await clock.follow_database(store)  # type: ignore[arg-type]
    assert abs(clock.now() - (datetime.now(UTC) - timedelta(seconds=300))) < timedelta(seconds=2)
    readings.append((0, 2.0))  # a slow reading later is let go
    await clock.follow_database(store)  # type: ignore[arg-type]
    assert clock.now() < datetime.now(UTC) - timedelta(seconds=290)
    readings.append((-310, 0.01))  # ten seconds further back: the clock holds still rather than go back
    held = clock.now()
    await clock.follow_database(store)  # type: ignore[arg-type]
    assert clock.now() == held and clock.now() >= held
