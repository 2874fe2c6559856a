"""The task queue against real hubs and real worker processes: nothing lost, nothing done twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from agora.bus import Event
from agora.core.wakeups import claimer_keys, keys_for

from .conftest import call, expect_error, fresh_postgres_url, new_tenant, ok, unique
from .hubproc import HubProcess

ROOT = Path(__file__).resolve().parents[1]


def register(client: httpx.Client, *capabilities: str) -> dict[str, Any]:
    return ok(call(client, "agora.agents.register", agent_name=unique("worker"), capabilities=list(capabilities)))


def assign(client: httpx.Client, **args: Any) -> dict[str, Any]:
    return ok(call(client, "agora.task.assign", **{"task_type": "job", **args}))


def claim(client: httpx.Client, **args: Any) -> dict[str, Any]:
    return ok(call(client, "agora.task.claim", **args))


def worker(hub: HubProcess, token: str, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.task_worker", hub.url, token, str(out), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def test_eight_workers_racing_over_2000_tasks_complete_each_exactly_once_one_or_many_at_a_time(hub, admin, tmp_path):
    customer = new_tenant(admin, hub)
    workers = [register(customer, "crunch") for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:  # queued from 8 threads: the race is the workers', not the producer's
        ids = list(pool.map(lambda n: assign(customer, required_capabilities=["crunch"], payload={"n": n})["task_id"], range(2000)))
    outs = [tmp_path / f"w{i}.txt" for i in range(8)]
    # Half take one task per call, half up to 25 (claim_batch, update_batch): both kinds race over the same queue.
    procs = [worker(hub, w["agent_token"], out, "--idle-exit", "2", "--batch", "1" if i % 2 else "25") for i, (w, out) in enumerate(zip(workers, outs))]
    for p in procs:
        p.wait(120)
    completed = Counter(line for out in outs if out.exists() for line in out.read_text().split())
    assert sorted(completed) == sorted(ids)
    assert set(completed.values()) == {1}
    assert sum(1 for out in outs if out.exists() and out.read_text()) >= 4  # they really raced
    stats = ok(call(customer, "agora.task.stats"))
    assert stats["by_status"] == {"completed": 2000} and stats["in_flight_leases"] == 0
    sample = ok(call(customer, "agora.task.history", task_id=ids[1234]))["transitions"]
    assert [t["to_status"] for t in sample] == ["pending", "in_progress", "completed"]


def test_a_killed_worker_s_task_is_redelivered_after_its_lease_and_completed_once(hub, admin, tmp_path):
    customer = new_tenant(admin, hub)
    slow, rescuer = register(customer, "fragile"), register(customer, "fragile")
    task = assign(customer, required_capabilities=["fragile"], max_attempts=3)["task_id"]
    doomed = worker(hub, slow["agent_token"], tmp_path / "slow.txt", "--hold", "60", "--lease", "2")
    assert doomed.stdout is not None
    assert doomed.stdout.readline().decode().strip() == f"claimed {task}"
    os.killpg(doomed.pid, signal.SIGKILL)  # mid-task, lease held
    doomed.wait()
    started = time.monotonic()
    with hub.client(rescuer["agent_token"]) as r:
        got = claim(r, wait=15)
        assert got["task"]["task_id"] == task and got["task"]["attempts"] == 2
        assert 1.5 < time.monotonic() - started < 12  # after the 2 s lease, not before
        ok(call(r, "agora.task.update", task_id=task, lease_token=got["lease"]["token"], status="completed"))
    final = ok(call(customer, "agora.task.get", task_id=task))
    assert (final["status"], final["claimed_by"], final["attempts"]) == ("completed", rescuer["agent_id"], 2)
    history = ok(call(customer, "agora.task.history", task_id=task))["transitions"]
    assert [t["to_status"] for t in history] == ["pending", "in_progress", "pending", "in_progress", "completed"]
    assert history[2]["note"] == "lease expired"


def test_a_stale_lease_is_refused_and_changes_nothing(hub, admin):
    a, b = register(admin, "x1"), register(admin, "x1")
    task = assign(admin, assignee=a["agent_id"], max_attempts=5)["task_id"]
    with hub.client(a["agent_token"]) as ca, hub.client(b["agent_token"]) as cb:
        first = claim(ca, lease_seconds=1)
        old = first["lease"]["token"]
        expect_error(call(cb, "agora.task.update", task_id=task, lease_token=old, status="completed"), 409, "conflict")
        time.sleep(1.2)  # the lease runs out; the task goes back to the queue and a claims it again
        second = claim(ca, wait=10)
        assert second["lease"]["fencing_token"] == first["lease"]["fencing_token"] + 1
        error = expect_error(call(ca, "agora.task.update", task_id=task, lease_token=old, status="completed"), 409, "conflict")
        assert "stale" in error["message"]
        expect_error(call(ca, "agora.task.heartbeat", task_id=task, lease_token=old), 409, "conflict")
        assert ok(call(admin, "agora.task.get", task_id=task))["status"] == "in_progress"
        done = ok(call(ca, "agora.task.update", task_id=task, lease_token=second["lease"]["token"], status="completed", result=7))
        assert (done["status"], done["result"], done["progress"]) == ("completed", 7, 100)
        expect_error(call(ca, "agora.task.update", task_id=task, lease_token=second["lease"]["token"], notes="again"), 409, "conflict")


def test_a_heartbeat_renews_only_its_holder_s_lease(hub, admin):
    """One guarded UPDATE: the holder's renewal moves the lease and sets progress and notes; anyone else's, a stale
    token's or a finished task's changes nothing and says why."""
    a, b = register(admin, "hb"), register(admin, "hb")
    task = assign(admin, assignee=a["agent_id"])["task_id"]
    with hub.client(a["agent_token"]) as ca, hub.client(b["agent_token"]) as cb:
        got = claim(ca, lease_seconds=30)
        token = got["lease"]["token"]
        renewed = ok(call(ca, "agora.task.heartbeat", task_id=task, lease_token=token, progress=40, notes="halfway", lease_seconds=600))
        assert (renewed["progress"], renewed["notes"], renewed["status"]) == (40, "halfway", "in_progress")
        expect_error(call(cb, "agora.task.heartbeat", task_id=task, lease_token=token), 409, "conflict")
        expect_error(call(ca, "agora.task.heartbeat", task_id=task, lease_token="lease_" + "0" * 32), 409, "conflict")
        expect_error(call(ca, "agora.task.heartbeat", task_id="task_" + "0" * 24, lease_token=token), 404, "not_found")
        assert ok(call(admin, "agora.task.get", task_id=task))["notes"] == "halfway"  # the refusals changed nothing
        ok(call(ca, "agora.task.update", task_id=task, lease_token=token, status="completed"))
        expect_error(call(ca, "agora.task.heartbeat", task_id=task, lease_token=token), 409, "conflict")
    listed = ok(call(admin, "agora.task.list", agent=a["agent_id"], status="completed"))["tasks"]
    assert [t["progress"] for t in listed if t["task_id"] == task] == [100]


def test_a_batch_claim_takes_tasks_in_claim_order_each_under_its_own_lease(hub, admin):
    bulk = unique("bulk")  # queued before any agent has it: no task prefers the agent, claim order alone decides
    low = [assign(admin, required_capabilities=[bulk], priority="low")["task_id"] for _ in range(3)]
    urgent = assign(admin, required_capabilities=[bulk], priority="urgent")["task_id"]
    agent = register(admin, bulk)
    mine = assign(admin, assignee=agent["agent_id"])["task_id"]
    with hub.client(agent["agent_token"]) as c:
        first = ok(call(c, "agora.task.claim_batch", max_tasks=3))["claims"]
        assert [x["task"]["task_id"] for x in first] == [urgent, mine, low[0]]
        assert len({x["lease"]["token"] for x in first}) == 3 and {x["task"]["status"] for x in first} == {"in_progress"}
        rest = ok(call(c, "agora.task.claim_batch", max_tasks=10))["claims"]
        assert [x["task"]["task_id"] for x in rest] == low[1:]
        started = time.monotonic()
        assert ok(call(c, "agora.task.claim_batch", max_tasks=10, wait=0.3))["claims"] == []
        assert time.monotonic() - started >= 0.3
    expect_error(call(admin, "agora.task.claim_batch", agent=agent["agent_id"], max_tasks=101), 422, "invalid_argument")
    parked, got = parked_claim(hub, agent["agent_token"], "agora.task.claim_batch", max_tasks=5)
    late = assign(admin, assignee=agent["agent_id"])["task_id"]
    parked.join(10)
    assert [x["task"]["task_id"] for x in got["claim"]["claims"]] == [late]


def test_a_batch_assign_queues_every_task_or_none(hub, admin):
    cap, key, again = unique("batchcap"), unique("idem"), unique("idem")
    agent = register(admin, cap)
    earlier = assign(admin, assignee=agent["agent_id"], idempotency_key=key)["task_id"]
    answer = ok(call(admin, "agora.task.assign_batch", tasks=[
        {"task_type": "job", "required_capabilities": [cap], "priority": "urgent"},
        {"task_type": "job", "assignee": agent["agent_id"], "idempotency_key": key},  # an earlier assign's key
        {"task_type": "job", "assignee": unique("later"), "payload": {"n": 2}},  # nobody of that name yet: queued
        {"task_type": "job", "assignee": agent["agent_id"], "idempotency_key": again},
        {"task_type": "job", "assignee": agent["agent_id"], "idempotency_key": again},  # twice in the same batch
    ]))  # fmt: skip
    results = answer["results"]
    assert answer["created"] == 3 and [r["created"] for r in results] == [True, False, True, True, False]
    assert results[1]["task_id"] == earlier and results[4]["task_id"] == results[3]["task_id"]
    assert "waits" in results[2]["warnings"][0] and {r["status"] for r in results} == {"pending"}
    with hub.client(agent["agent_token"]) as c:
        claims = ok(call(c, "agora.task.claim_batch", max_tasks=10))["claims"]
    assert [x["task"]["task_id"] for x in claims] == [results[0]["task_id"], earlier, results[3]["task_id"]]
    assert ok(call(admin, "agora.task.get", task_id=results[0]["task_id"]))["preferred_agent"] == agent["agent_id"]

    other = register(admin)
    refused = [{"task_type": "job", "assignee": other["agent_id"]}, {"task_type": "job", "assignee": other["agent_id"], "depends_on": ["task_00000000000000ff"]}]
    error = expect_error(call(admin, "agora.task.assign_batch", tasks=refused), 404, "not_found")
    assert error["details"]["index"] == 1 and error["message"].startswith("task 1: "), error
    with hub.client(other["agent_token"]) as o:
        assert ok(call(o, "agora.task.claim_batch", max_tasks=10))["claims"] == []  # the first task was not queued either
    expect_error(call(admin, "agora.task.assign_batch", tasks=[]), 422, "invalid_argument")
    expect_error(call(admin, "agora.task.assign_batch", tasks=[{"task_type": "job", "assignee": "x"}] * 101), 422, "invalid_argument")


def test_a_capability_task_prefers_the_least_loaded_agent_and_ties_are_spread(hub, admin):
    cap = unique("loadcap")
    busy, idle = register(admin, cap), register(admin, cap)
    for _ in range(2):
        assign(admin, assignee=busy["agent_id"])
    with hub.client(busy["agent_token"]) as c:
        assert len(ok(call(c, "agora.task.claim_batch", max_tasks=2))["claims"]) == 2  # busy has 2 in progress
    preferred = ok(call(admin, "agora.task.get", task_id=assign(admin, required_capabilities=[cap])["task_id"]))["preferred_agent"]
    assert preferred == idle["agent_id"]
    with hub.client(idle["agent_token"]) as c:
        assert len(ok(call(c, "agora.task.claim_batch", max_tasks=1))["claims"]) == 1
    with hub.client(busy["agent_token"]) as c:  # busy finishes one: both have one task in progress, a tie
        claims = ok(call(c, "agora.task.list", agent=busy["agent_id"], status="in_progress"))["tasks"]
    ok(call(admin, "agora.task.cancel", task_id=claims[0]["task_id"]))
    batch = ok(call(admin, "agora.task.assign_batch", tasks=[{"task_type": "job", "required_capabilities": [cap]}] * 40))["results"]
    chosen = Counter(ok(call(admin, "agora.task.get", task_id=r["task_id"]))["preferred_agent"] for r in batch)
    assert set(chosen) == {busy["agent_id"], idle["agent_id"]}, chosen  # each task picks among the tied at random


def test_a_batch_update_applies_each_update_on_its_own(hub, admin):
    agent, other = register(admin), register(admin)
    for _ in range(3):
        assign(admin, assignee=agent["agent_id"])
    finished = assign(admin, assignee=agent["agent_id"])["task_id"]
    with hub.client(agent["agent_token"]) as c, hub.client(other["agent_token"]) as o:
        claims = ok(call(c, "agora.task.claim_batch", max_tasks=4))["claims"]
        ids = [x["task"]["task_id"] for x in claims]
        token = {x["task"]["task_id"]: x["lease"]["token"] for x in claims}
        ok(call(c, "agora.task.update", task_id=finished, lease_token=token[finished], status="completed"))
        foreign = ok(call(o, "agora.task.update_batch", updates=[{"task_id": ids[0], "lease_token": token[ids[0]], "status": "completed"}]))
        assert (foreign["updated"], foreign["failed"], foreign["results"][0]["error"]["code"]) == (0, 1, "conflict")
        answer = ok(call(c, "agora.task.update_batch", updates=[
            {"task_id": ids[0], "lease_token": token[ids[0]], "status": "completed", "result": {"n": 0}},
            {"task_id": ids[1], "lease_token": token[ids[2]], "status": "completed"},  # another task's lease
            {"task_id": finished, "lease_token": token[finished], "status": "failed"},  # already finished
            {"task_id": ids[2], "lease_token": token[ids[2]], "progress": 60, "notes": "most of it"},
            {"task_id": ids[0], "lease_token": token[ids[0]], "status": "failed"},  # finished by the first update
        ]))  # fmt: skip
        results = answer["results"]
        assert (answer["updated"], answer["failed"]) == (2, 3)
        assert [r["task_id"] for r in results] == [ids[0], ids[1], finished, ids[2], ids[0]]
        assert results[4]["error"]["code"] == "conflict" and "already completed" in results[4]["error"]["message"]
        assert results[0]["task"]["status"] == "completed" and results[0]["error"] is None
        assert results[1]["task"] is None and results[1]["error"]["code"] == "conflict" and "stale" in results[1]["error"]["message"]
        assert results[2]["error"]["code"] == "conflict" and "already completed" in results[2]["error"]["message"]
        assert results[3]["task"]["progress"] == 60
    tasks = {t: ok(call(admin, "agora.task.get", task_id=t)) for t in ids}
    assert (tasks[ids[0]]["status"], tasks[ids[0]]["result"]) == ("completed", {"n": 0})
    assert (tasks[ids[1]]["status"], tasks[ids[1]]["progress"]) == ("in_progress", 0)  # the refused update changed nothing
    assert (tasks[ids[2]]["status"], tasks[ids[2]]["notes"]) == ("in_progress", "most of it")
    history = ok(call(admin, "agora.task.history", task_id=ids[1]))["transitions"]
    assert [t["to_status"] for t in history] == ["pending", "in_progress"]
    expect_error(call(admin, "agora.task.update_batch", updates=[]), 422, "invalid_argument")


def test_retries_back_off_then_end_in_the_dead_letter_and_can_be_requeued(hub, admin):
    agent = register(admin)
    task = assign(admin, assignee=agent["agent_id"], max_attempts=2)["task_id"]
    with hub.client(agent["agent_token"]) as c:
        first = claim(c)
        failed = ok(call(c, "agora.task.update", task_id=task, lease_token=first["lease"]["token"], status="failed", retry=True, notes="boom"))
        assert failed["status"] == "pending" and failed["last_error"] == "boom"
        assert claim(c)["task"] is None  # backing off
        started = time.monotonic()
        second = claim(c, wait=10)
        assert second["task"]["task_id"] == task and 0.3 < time.monotonic() - started < 5
        dead = ok(call(c, "agora.task.update", task_id=task, lease_token=second["lease"]["token"], status="failed", retry=True, notes="boom again"))
        assert (dead["status"], dead["last_error"], dead["attempts"]) == ("dead_letter", "boom again", 2)
    listed = ok(call(admin, "agora.task.list", status="dead_letter", agent=agent["agent_id"]))
    assert [t["task_id"] for t in listed["tasks"]] == [task]
    assert ok(call(admin, "agora.task.stats"))["dead_letter"] >= 1
    again = ok(call(admin, "agora.task.requeue", task_id=task))
    assert (again["status"], again["attempts"]) == ("pending", 0)


def test_a_task_may_set_its_own_retry_backoff(hub, admin):
    agent = register(admin)
    task = assign(admin, assignee=agent["agent_id"], retry_backoff_seconds=0.05)["task_id"]
    with hub.client(agent["agent_token"]) as c:
        first = claim(c)
        assert first["task"]["retry_backoff_seconds"] == 0.05
        ok(call(c, "agora.task.update", task_id=task, lease_token=first["lease"]["token"], status="failed", retry=True))
        started = time.monotonic()
        second = claim(c, wait=10)
        assert second["task"]["task_id"] == task and time.monotonic() - started < 0.45  # the default waits 0.5-1 s
    expect_error(call(admin, "agora.task.assign", task_type="t", assignee=agent["agent_id"], retry_backoff_seconds=0), 422, "invalid_argument")


def test_dependencies_order_the_work_and_failures_propagate(hub, admin):
    agent = register(admin)
    first = assign(admin, assignee=agent["agent_id"], priority="low")["task_id"]
    second = assign(admin, assignee=agent["agent_id"], priority="urgent", depends_on=[first])["task_id"]
    doomed = assign(admin, assignee=agent["agent_id"], depends_on=[second])["task_id"]
    anyway = assign(admin, assignee=agent["agent_id"], depends_on=[second], run_if_dependency_fails=True, priority="low")["task_id"]
    with hub.client(agent["agent_token"]) as c:
        got = claim(c)  # the urgent one waits for its dependency
        assert got["task"]["task_id"] == first
        assert claim(c)["task"] is None
        ok(call(c, "agora.task.update", task_id=first, lease_token=got["lease"]["token"], status="completed"))
        got = claim(c)
        assert got["task"]["task_id"] == second
        ok(call(c, "agora.task.update", task_id=second, lease_token=got["lease"]["token"], status="failed", notes="no"))
        assert ok(call(admin, "agora.task.get", task_id=doomed))["status"] == "failed"
        assert claim(c)["task"]["task_id"] == anyway
    expect_error(call(admin, "agora.task.assign", task_type="job", assignee=agent["agent_id"], depends_on=["task_0000000000000000"]), 404, "not_found")
    late = assign(admin, assignee=agent["agent_id"], depends_on=[second])
    assert late["status"] == "failed"  # its dependency already failed


def test_a_passed_deadline_fails_the_task_as_expired(hub, admin):
    agent = register(admin)
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    task = assign(admin, assignee=agent["agent_id"], deadline=soon)["task_id"]
    deadline = time.monotonic() + 10
    while ok(call(admin, "agora.task.get", task_id=task))["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.2)
    final = ok(call(admin, "agora.task.get", task_id=task))
    assert (final["status"], final["last_error"]) == ("failed", "expired")
    # Times without an offset are UTC; any offset is converted: every time comes back with a "Z".
    for given in ("2999-01-01T02:00:00", "2999-01-01T04:00:00+02:00"):
        later = assign(admin, assignee=agent["agent_id"], deadline=given)["task_id"]
        assert ok(call(admin, "agora.task.get", task_id=later))["deadline"] == "2999-01-01T02:00:00Z"


def test_assign_is_idempotent_and_estimates_from_recent_durations(hub, admin):
    agent = register(admin)
    key = unique("idem")
    one = assign(admin, assignee=agent["agent_id"], idempotency_key=key, task_type="est")
    two = assign(admin, assignee=agent["agent_id"], idempotency_key=key, task_type="est", payload={"other": 1})
    assert one["task_id"] == two["task_id"] and (one["created"], two["created"]) == (True, False)
    assert one["estimated_completion"] is None  # nothing of this type finished yet
    with hub.client(agent["agent_token"]) as c:
        got = claim(c)
        ok(call(c, "agora.task.update", task_id=got["task"]["task_id"], lease_token=got["lease"]["token"], status="completed"))
    assert assign(admin, assignee=agent["agent_id"], task_type="est")["estimated_completion"] is not None


def parked_claim(hub: HubProcess, token: str, tool: str = "agora.task.claim", **args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """A claim(wait=15) in a thread, parked by the time this returns; the dict gets its answer and when it came."""
    result: dict[str, Any] = {}

    def wait() -> None:
        with hub.client(token) as c:
            result["claim"] = ok(call(c, tool, wait=15, **args))
            result["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    return waiter, result


def test_a_waiting_claimer_wakes_the_moment_work_arrives(hub, admin):
    agent = register(admin, "instant")
    waiter, result = parked_claim(hub, agent["agent_token"])
    sent = time.monotonic()
    task = assign(admin, required_capabilities=["instant"])["task_id"]
    waiter.join(20)
    assert result["claim"]["task"]["task_id"] == task
    assert result["at"] - sent < 1.5  # woken, not polled


def test_a_parked_claimer_that_knows_its_capabilities_wakes_for_each_kind_of_work_it_may_take(hub, admin):
    """After its first look at the queue a claimer waits only for work it may take: by its name, its id, or its
    capabilities. Work for another capability first wakes it once, then no more."""
    agent = register(admin, "mine", "also-mine")
    other = register(admin, "not-mine")
    for work in ({"assignee": agent["agent_name"]}, {"assignee": agent["agent_id"]},
                 {"required_capabilities": ["also-mine", "mine"]}):  # fmt: skip
        waiter, result = parked_claim(hub, agent["agent_token"])
        assign(admin, required_capabilities=["not-mine"])  # it looks, and parks again knowing what it has
        time.sleep(0.3)
        sent = time.monotonic()
        task = assign(admin, **work)["task_id"]
        waiter.join(20)
        assert result["claim"]["task"]["task_id"] == task, work
        assert result["at"] - sent < 1.5, work  # woken, not polled
    with hub.client(other["agent_token"]) as c:  # the other agent's work, out of the next tests' way: all three tasks
        assert len(ok(call(c, "agora.task.claim_batch", max_tasks=10))["claims"]) == 3


def test_new_work_wakes_only_the_claimers_that_may_take_it():
    def event(**task: Any) -> Event:
        return Event("task_assigned", "t", {"task_id": "task_1", "assignee": None, "required_capabilities": [], **task})

    gpu = {"agent_id": "agent_1", "agent_name": "gpu-box", "capabilities": ["gpu", "cuda"]}
    cpu = {"agent_id": "agent_2", "agent_name": "cpu-box", "capabilities": ["cpu"]}

    def woken(e: Event) -> set[str]:
        return {a["agent_name"] for a in (gpu, cpu) if set(keys_for(e)) & set(claimer_keys("t", a))}

    assert woken(event(required_capabilities=["gpu", "cuda"])) == {"gpu-box"}
    assert woken(event(required_capabilities=["fpga"])) == set()
    assert woken(event(assignee="cpu-box")) == woken(event(assignee="agent_2")) == {"cpu-box"}
    assert woken(event()) == {"gpu-box", "cpu-box"}
    assert woken(Event("task_released", "t", {"task_id": "task_1"})) == {"gpu-box", "cpu-box"}  # a retry: anyone
    assert set(keys_for(event(required_capabilities=["fpga"]))) & set(claimer_keys("t", None))  # not yet known: woken
    assert not set(keys_for(event(required_capabilities=["gpu"]))) & set(claimer_keys("other-tenant", gpu))


def test_a_finished_dependency_wakes_the_claimer_its_dependent_waits_for(hub, admin):
    """Only a task with dependents wakes parked claimers when it ends: this one must, at once."""
    upstream_agent, waiting_agent = register(admin, "upstream-work"), register(admin, "downstream-work")
    first = assign(admin, assignee=upstream_agent["agent_id"])["task_id"]
    second = assign(admin, assignee=waiting_agent["agent_id"], depends_on=[first])["task_id"]
    waiter, result = parked_claim(hub, waiting_agent["agent_token"])  # its only task waits for the first
    with hub.client(upstream_agent["agent_token"]) as c:
        lease = claim(c)["lease"]
        finished = time.monotonic()
        ok(call(c, "agora.task.update", task_id=first, status="completed", lease_token=lease["token"]))
    waiter.join(20)
    assert result["claim"]["task"]["task_id"] == second
    assert result["at"] - finished < 1.5  # woken by the completion, not by the end of its wait


def test_tenants_never_see_or_take_each_others_tasks(hub, admin):
    one, two = new_tenant(admin, hub), new_tenant(admin, hub)
    mine = register(one, "shared-cap")
    theirs = register(two, "shared-cap")
    task = assign(one, required_capabilities=["shared-cap"])["task_id"]
    expect_error(call(two, "agora.task.get", task_id=task), 404, "not_found")
    expect_error(call(two, "agora.task.cancel", task_id=task), 404, "not_found")
    assert ok(call(two, "agora.task.list"))["total"] == 0
    with hub.client(theirs["agent_token"]) as c:
        assert claim(c)["task"] is None
    with hub.client(mine["agent_token"]) as c:
        assert claim(c)["task"]["task_id"] == task


def test_bad_task_input_gets_clear_errors(hub, admin):
    agent = register(admin)
    queued = assign(admin, assignee="nobody-yet-" + unique())
    assert queued["status"] == "pending" and "waits" in queued["warnings"][0]
    assert assign(admin, required_capabilities=["no-such-skill"])["warnings"]
    expect_error(call(admin, "agora.task.assign", task_type="job", assignee="nobody-" + unique(), require_available=True), 409, "conflict")
    expect_error(call(admin, "agora.task.assign", task_type="job"), 422, "invalid_argument")
    expect_error(call(admin, "agora.task.assign", task_type="job", assignee="x", required_capabilities=["y"]), 422, "invalid_argument")
    task = assign(admin, assignee=agent["agent_id"])["task_id"]
    with hub.client(agent["agent_token"]) as c:
        got = claim(c)
        expect_error(call(c, "agora.task.heartbeat", task_id=task, lease_token=got["lease"]["token"], progress=150), 422, "invalid_argument")
        expect_error(call(c, "agora.task.update", task_id=task, status="completed"), 409, "conflict")  # no lease token
        ok(call(c, "agora.task.update", task_id=task, lease_token=got["lease"]["token"], status="completed"))
    expect_error(call(admin, "agora.task.cancel", task_id=task), 409, "conflict")
    expect_error(call(admin, "agora.task.get", task_id="task_0000000000000000"), 404, "not_found")
    expect_error(call(admin, "agora.task.get", task_id="nope"), 422, "invalid_argument")


async def test_task_transitions_are_events_on_the_assignee_s_stream(hub, admin):
    from .test_streams import connect, frame

    agent = register(admin)
    async with connect(hub, agent["agent_token"], types="task_*") as ws:
        task = assign(admin, assignee=agent["agent_id"])["task_id"]
        with hub.client(agent["agent_token"]) as c:
            lease = claim(c)["lease"]["token"]
            ok(call(c, "agora.task.update", task_id=task, lease_token=lease, status="completed"))
        seen = [await frame(ws) for _ in range(3)]
    assert [(f["type"], f["data"]["task_id"], f["data"]["status"]) for f in seen] == [
        ("task_assigned", task, "pending"), ("task_claimed", task, "in_progress"), ("task_completed", task, "completed")
    ]


def test_a_task_for_any_capable_agent_is_queued_with_its_history_and_estimate(hub, admin):
    """On PostgreSQL such a task (no assignee, key or dependency) is read for and written in one statement."""
    cap = unique("anycap")
    nobody = ok(call(admin, "agora.task.assign", task_type="est-any", required_capabilities=[cap]))
    assert nobody["created"] and nobody["estimated_completion"] is None and "no active agent has" in nobody["warnings"][0]
    agent = register(admin, cap)
    with hub.client(agent["agent_token"]) as c:
        got = claim(c)
        ok(call(c, "agora.task.update", task_id=got["task"]["task_id"], lease_token=got["lease"]["token"], status="completed"))
    queued = ok(call(admin, "agora.task.assign", task_type="est-any", required_capabilities=[cap], payload={"n": 2}))
    assert queued["warnings"] == [] and queued["estimated_completion"] is not None
    task = ok(call(admin, "agora.task.get", task_id=queued["task_id"]))
    assert (task["status"], task["preferred_agent"], task["payload"], task["attempts"]) == ("pending", agent["agent_id"], {"n": 2}, 0)
    history = ok(call(admin, "agora.task.history", task_id=queued["task_id"]))["transitions"]
    assert [(h["from_status"], h["to_status"], h["note"]) for h in history] == [(None, "pending", None)]
    with hub.client(agent["agent_token"]) as c:  # its requirement was stored: an agent without the capability gets nothing
        assert claim(c)["task"]["task_id"] == queued["task_id"]
    with hub.client(register(admin)["agent_token"]) as other:
        assert claim(other)["task"] is None


async def test_a_batch_writes_its_tasks_together_yet_announces_them_in_order(hub, admin):
    """A batch's tasks without dependencies are written in one statement per table; one with dependencies writes
    those before it first, so the stream still sees every task in the order the batch gave them."""
    from .test_streams import connect, frame

    agent = register(admin)
    doomed = assign(admin, assignee=agent["agent_id"])["task_id"]
    ok(call(admin, "agora.task.cancel", task_id=doomed))
    plain = {"task_type": "job", "assignee": agent["agent_id"]}
    async with connect(hub, agent["agent_token"], types="task_*") as ws:
        results = ok(call(admin, "agora.task.assign_batch", tasks=[plain, {**plain, "depends_on": [doomed]}, plain]))["results"]
        seen = [await frame(ws) for _ in range(4)]
    assert [r["status"] for r in results] == ["pending", "failed", "pending"]
    first, failed, last = (r["task_id"] for r in results)
    assert [(f["type"], f["data"]["task_id"]) for f in seen] == [
        ("task_assigned", first), ("task_assigned", failed), ("task_failed", failed), ("task_assigned", last)
    ]
    history = ok(call(admin, "agora.task.history", task_id=last))
    assert [(h["from_status"], h["to_status"]) for h in history["transitions"]] == [(None, "pending")], history


def test_a_claimer_on_one_replica_wakes_when_work_is_assigned_on_the_other(two_replicas):
    one, two = two_replicas
    with one.client() as admin_one:
        agent = register(admin_one, "replicated-work")
    result: dict[str, Any] = {}

    def wait() -> None:
        with two.client(agent["agent_token"]) as c:
            result["claim"] = claim(c, wait=15)
            result["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.5)
    sent = time.monotonic()
    with one.client() as admin_one:
        task = assign(admin_one, required_capabilities=["replicated-work"])["task_id"]
    waiter.join(20)
    assert result["claim"]["task"]["task_id"] == task
    assert result["at"] - sent < 3  # woken through Redis, not by the long-poll running out


def test_seed_style_start_by_update_binds_the_task_to_that_agent(hub, admin):
    """Seed 000's workers set a pending task in_progress instead of claiming: only that agent may then finish it."""
    mine, other = register(admin, "docs"), register(admin, "docs")
    task = assign(admin, assignee=mine["agent_id"])["task_id"]
    with hub.client(other["agent_token"]) as c:
        expect_error(call(c, "agora.task.update", task_id=task, status="in_progress"), 409, "conflict")  # not its task
    with hub.client(mine["agent_token"]) as c:
        started = ok(call(c, "agora.task.update", task_id=task, status="in_progress", progress=0))
        assert started["status"] == "in_progress" and started["claimed_by"] == mine["agent_id"] and started["attempts"] == 1
        assert claim(c)["task"] is None  # taken: no second claim of it
    with hub.client(other["agent_token"]) as c:
        expect_error(call(c, "agora.task.update", task_id=task, status="completed"), 409, "conflict")
    with hub.client(mine["agent_token"]) as c:
        stale = "lease_" + "0" * 32
        expect_error(call(c, "agora.task.update", task_id=task, status="completed", lease_token=stale), 409, "conflict")
        done = ok(call(c, "agora.task.update", task_id=task, status="completed", notes="done"))
    assert done["status"] == "completed" and done["progress"] == 100
    blocked = assign(admin, assignee=mine["agent_id"], depends_on=[assign(admin, assignee=other["agent_id"])["task_id"]])
    with hub.client(mine["agent_token"]) as c:
        expect_error(call(c, "agora.task.update", task_id=blocked["task_id"], status="in_progress"), 409, "conflict")


def test_a_long_poll_whose_client_left_takes_no_work(hub, admin):
    """A claim or receive parked by a client that then hung up must not hand work to the closed connection."""
    import contextlib

    agent = register(admin, "lp")
    with hub.client(agent["agent_token"]) as c:
        for tool, args in (("agora.task.claim", {"wait": 10}), ("agora.messaging.receive", {"wait": 10})):
            with contextlib.suppress(httpx.ReadTimeout):
                c.post("/" + tool.replace(".", "/"), json=args, timeout=0.3)  # gives up, closing the connection
        time.sleep(0.2)
        task = assign(admin, assignee=agent["agent_id"])["task_id"]
        ok(call(admin, "agora.messaging.send", to_agent=agent["agent_id"], content="still here?"))
        assert claim(c, wait=5)["task"]["task_id"] == task
        assert [m["content"] for m in ok(call(c, "agora.messaging.receive", wait=5))["messages"]] == ["still here?"]


def test_update_batch_with_claim_next_reports_and_takes_work_in_one_call(hub, admin):
    customer = new_tenant(admin, hub)
    worker = register(customer, "relay")
    me = hub.client(worker["agent_token"])
    ids = [assign(customer, required_capabilities=["relay"], payload={"n": n})["task_id"] for n in range(3)]
    first = claim(me)
    done = ok(call(me, "agora.task.update_batch", claim_next={"max_tasks": 5, "lease_seconds": 10}, updates=[
        {"task_id": first["task"]["task_id"], "lease_token": first["lease"]["token"], "status": "completed"}]))  # fmt: skip
    assert done["updated"] == 1 and {c["task"]["task_id"] for c in done["claims"]} == set(ids) - {first["task"]["task_id"]}
    assert all(c["task"]["status"] == "in_progress" and c["lease"]["fencing_token"] == 1 for c in done["claims"])
    assert done["results"][0]["task"]["status"] == "completed"
    history = ok(call(customer, "agora.task.history", task_id=first["task"]["task_id"]))["transitions"]
    assert [(t["from_status"], t["to_status"], t["actor"]) for t in history][1:] == [
        ("pending", "in_progress", worker["agent_id"]), ("in_progress", "completed", worker["agent_id"])]  # fmt: skip
    # A failed update still takes the next work; nothing left: no claims. Brief results leave the tasks out.
    again = ok(call(me, "agora.task.update_batch", claim_next={}, brief=True, updates=[
        {"task_id": first["task"]["task_id"], "lease_token": first["lease"]["token"], "status": "completed"}]))  # fmt: skip
    assert (again["failed"], again["claims"]) == (1, [])
    second = done["claims"][1]
    brief = ok(call(me, "agora.task.update_batch", brief=True, updates=[{"task_id": second["task"]["task_id"], "lease_token": second["lease"]["token"], "notes": "n"}]))
    assert brief["updated"] == 1 and brief["results"][0]["task"] is None
    # Only an agent claims its own next tasks.
    held = done["claims"][0]
    refused = call(customer, "agora.task.update_batch", claim_next={"max_tasks": 1},
                   updates=[{"task_id": held["task"]["task_id"], "notes": "hi"}])  # fmt: skip
    assert expect_error(refused, 400, "invalid_argument")["details"]["field"] == "claim_next"
    expect_error(call(me, "agora.task.update_batch", claim_next={"max_tasks": 0}, updates=[{"task_id": held["task"]["task_id"]}]), 422, "invalid_argument")


def test_an_empty_claim_says_when_a_task_backing_off_becomes_eligible(hub, admin):
    customer = new_tenant(admin, hub)
    worker = register(customer, "later")
    me = hub.client(worker["agent_token"])
    assign(customer, required_capabilities=["later"], retry_backoff_seconds=30)
    first = claim(me)
    ok(call(me, "agora.task.update", task_id=first["task"]["task_id"], lease_token=first["lease"]["token"], status="failed", retry=True))
    empty = ok(call(me, "agora.task.claim_batch", max_tasks=5))
    assert empty["claims"] == [] and empty["next_available_at"] is not None
    assert ok(call(me, "agora.task.claim_batch", max_tasks=5, task_types=["nothing-of-the-kind"]))["claims"] == []


async def test_completions_in_a_batch_are_made_each_on_its_own_with_their_history_and_events(hub, admin):
    """Completions alike (on PostgreSQL one statement for the lot): the good ones are made with what they set, in
    order on the stream; a foreign lease or a finished task is refused in its place and changes nothing."""
    from .test_streams import connect, frame

    agent = register(admin)
    ids = [assign(admin, assignee=agent["agent_id"])["task_id"] for _ in range(4)]
    with hub.client(agent["agent_token"]) as c:
        token = {x["task"]["task_id"]: x["lease"]["token"] for x in ok(call(c, "agora.task.claim_batch", max_tasks=4))["claims"]}
        ok(call(c, "agora.task.update", task_id=ids[3], lease_token=token[ids[3]], status="completed"))
        async with connect(hub, agent["agent_token"], types="task_completed") as ws:
            answer = ok(call(c, "agora.task.update_batch", updates=[
                {"task_id": ids[0], "lease_token": token[ids[0]], "status": "completed", "result": {"n": 0}, "notes": "done", "progress": 90},
                {"task_id": ids[1], "lease_token": token[ids[1]], "status": "completed", "result": [1, 2], "notes": None, "progress": 100},
                {"task_id": ids[2], "lease_token": token[ids[0]], "status": "completed", "result": None, "notes": "x", "progress": 5},
                {"task_id": ids[3], "lease_token": token[ids[3]], "status": "completed", "result": 3, "notes": "again", "progress": 7},
            ]))  # fmt: skip
            seen = [await frame(ws) for _ in range(2)]
    assert (answer["updated"], answer["failed"]) == (2, 2)
    errors = [r["error"] and r["error"]["message"] for r in answer["results"]]
    assert errors[:2] == [None, None] and "stale" in errors[2] and "already completed" in errors[3], errors
    assert [(f["data"]["task_id"], f["data"]["from_status"], f["data"]["claimed_by"], f["data"]["progress"]) for f in seen] == [
        (ids[0], "in_progress", agent["agent_id"], 90), (ids[1], "in_progress", agent["agent_id"], 100)
    ]
    assert set(seen[0]["data"]) == {
        "task_id", "task_type", "status", "from_status", "assignee", "required_capabilities", "claimed_by", "progress",
        "priority", "workflow_id", "last_error", "has_dependents",
    }  # fmt: skip
    first, second, refused = (ok(call(admin, "agora.task.get", task_id=t)) for t in ids[:3])
    assert (first["status"], first["result"], first["notes"], first["progress"]) == ("completed", {"n": 0}, "done", 90)
    assert first["finished_at"] is not None and answer["results"][0]["task"]["finished_at"] == first["finished_at"]
    assert (second["result"], second["notes"]) == ([1, 2], None)
    assert (refused["status"], refused["notes"], refused["progress"]) == ("in_progress", None, 0)
    history = ok(call(admin, "agora.task.history", task_id=ids[0]))["transitions"]
    assert [(h["from_status"], h["to_status"], h["actor"], h["note"]) for h in history][1:] == [
        ("pending", "in_progress", agent["agent_id"], "attempt 1"), ("in_progress", "completed", agent["agent_id"], "done")
    ]


async def test_racing_transitions_reach_a_stream_each_once_and_in_order(hub, admin):
    """Six connections claim and complete 300 tasks at once: the assignee's stream, which follows the events by
    position, gets every task's three events, each once and in order (PostgreSQL commits them in sequence order)."""
    from .test_streams import connect, frame

    agent = register(admin)
    count = 300
    async with connect(hub, agent["agent_token"], types="task_*") as ws:
        for _ in range(count // 100):
            ok(call(admin, "agora.task.assign_batch", tasks=[{"task_type": "job", "assignee": agent["agent_id"]}] * 100))

        def work() -> None:
            with hub.client(agent["agent_token"]) as c:
                while (got := claim(c))["task"] is not None:
                    ok(call(c, "agora.task.update", task_id=got["task"]["task_id"], lease_token=got["lease"]["token"], status="completed"))

        with ThreadPoolExecutor(6) as pool:
            for done in [pool.submit(work) for _ in range(6)]:
                done.result()
        seen = [await frame(ws) for _ in range(3 * count)]
    by_task: dict[str, list[str]] = {}
    for f in seen:
        by_task.setdefault(f["data"]["task_id"], []).append(f["type"])
    assert len(by_task) == count and all(t == ["task_assigned", "task_claimed", "task_completed"] for t in by_task.values())


def test_a_statement_held_past_the_timeout_answers_503_and_keeps_nothing(postgres_url, tmp_path):
    """PostgreSQL: a completion stuck behind a row lock someone else holds is ended by the statement timeout; the
    caller gets 503 unavailable at once, not a hang or a 500, and the task is as it was (its lease still good)."""
    import asyncio

    import asyncpg

    url = fresh_postgres_url(postgres_url)
    hub = HubProcess(tmp_path / "hub", database_url=url, extra_args=["--pg-statement-timeout", "1"]).start()
    try:
        with hub.client() as admin:
            agent = register(admin)
            task_id = assign(admin, assignee=agent["agent_id"])["task_id"]
            with hub.client(agent["agent_token"]) as c:
                lease = claim(c)["lease"]["token"]

                async def held() -> tuple[httpx.Response, float]:
                    holder = await asyncpg.connect(url)
                    try:
                        async with holder.transaction():
                            await holder.execute("SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE", task_id)
                            started = time.monotonic()
                            answer = await asyncio.to_thread(call, c, "agora.task.update", task_id=task_id, lease_token=lease, status="completed")
                            return answer, time.monotonic() - started
                    finally:
                        await holder.close()

                answer, waited = asyncio.run(held())
                assert expect_error(answer, 503, "unavailable")["details"] == {"reason": "statement_timeout"}
                assert waited < 5, waited
                assert ok(call(admin, "agora.task.get", task_id=task_id))["status"] == "in_progress"
                assert ok(call(c, "agora.task.update", task_id=task_id, lease_token=lease, status="completed"))["status"] == "completed"
    finally:
        hub.stop()


def test_a_hub_starts_while_a_table_it_reads_at_start_is_locked(postgres_url, tmp_path):
    """PostgreSQL: a start-up read held past the statement timeout (here: the MCP servers, behind someone else's
    lock) does not stop the hub from starting; it says so in its log and serves."""
    import asyncio

    import asyncpg

    url = fresh_postgres_url(postgres_url)
    hub = HubProcess(tmp_path / "hub", database_url=url, extra_args=["--pg-statement-timeout", "0.5"])
    hub.start().stop()  # the schema is in place: the next start migrates nothing

    async def start_behind_a_lock() -> None:
        holder = await asyncpg.connect(url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE mcp_servers IN ACCESS EXCLUSIVE MODE")
                await asyncio.to_thread(hub.start)
        finally:
            await holder.close()

    try:
        asyncio.run(start_behind_a_lock())
        assert "could not be read at start" in hub.log_path.read_text()
        with hub.client() as admin:
            assert ok(call(admin, "agora.admin.health", component="system"))["status"] == "healthy"
    finally:
        hub.stop()
