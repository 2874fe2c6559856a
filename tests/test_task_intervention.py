"""Stepping into the queue: reassign, set_priority and requeue_dead_letter against real hubs."""

from __future__ import annotations

import time
from typing import Any

import httpx

from agora.bus import Event
from agora.core.wakeups import claimer_keys, keys_for

from .conftest import call, expect_error, new_tenant, ok, unique
from .hubproc import HubProcess
from .security.test_tenancy import _answer
from .test_cli import agora, agora_json
from .test_tasks import assign, claim, parked_claim, register


def get(client: httpx.Client, task_id: str) -> dict[str, Any]:
    return ok(call(client, "agora.task.get", task_id=task_id))


def history(client: httpx.Client, task_id: str) -> list[dict[str, Any]]:
    return ok(call(client, "agora.task.history", task_id=task_id))["transitions"]


def dead_letter(hub: HubProcess, client: httpx.Client, agent: dict[str, Any], **args: Any) -> str:
    """A task of ``client``'s that ``agent`` claimed and failed until the dead letter took it."""
    task = assign(client, assignee=agent["agent_id"], max_attempts=1, **args)["task_id"]
    with hub.client(agent["agent_token"]) as c:
        lease = ok(call(c, "agora.task.claim", task_types=[args.get("task_type", "job")]))["lease"]
        dead = ok(call(c, "agora.task.update", task_id=task, lease_token=lease["token"], status="failed", retry=True, notes="boom"))
    assert dead["status"] == "dead_letter"
    return task


def test_a_pending_task_reassigned_is_claimed_by_its_new_agent_only(hub, admin):
    customer = new_tenant(admin, hub)
    first, second = register(customer), register(customer)
    task = assign(customer, assignee=first["agent_id"])["task_id"]
    moved = ok(call(customer, "agora.task.reassign", task_id=task, assignee=second["agent_name"], reason="first is busy"))
    assert (moved["status"], moved["assignee"], moved["required_capabilities"]) == ("pending", second["agent_id"], [])
    last = history(customer, task)[-1]
    assert (last["from_status"], last["to_status"]) == ("pending", "pending")
    assert last["note"] == f"reassigned to {second['agent_id']}: first is busy"
    with hub.client(first["agent_token"]) as c:
        assert claim(c)["task"] is None
    with hub.client(second["agent_token"]) as c:
        assert claim(c)["task"]["task_id"] == task


def test_a_running_task_reassigned_loses_its_lease_and_its_holder_is_refused(hub, admin):
    customer = new_tenant(admin, hub)
    holder, taker = register(customer), register(customer)
    task = assign(customer, assignee=holder["agent_id"], max_attempts=2)["task_id"]
    with hub.client(holder["agent_token"]) as h, hub.client(taker["agent_token"]) as t:
        old = claim(h)["lease"]
        ok(call(h, "agora.task.heartbeat", task_id=task, lease_token=old["token"], progress=40))
        moved = ok(call(customer, "agora.task.reassign", task_id=task, assignee=taker["agent_id"]))
        assert (moved["status"], moved["claimed_by"], moved["attempts"], moved["progress"]) == ("pending", None, 0, 0)
        expect_error(call(h, "agora.task.heartbeat", task_id=task, lease_token=old["token"]), 409, "conflict")
        expect_error(call(h, "agora.task.update", task_id=task, lease_token=old["token"], status="completed"), 409, "conflict")
        assert claim(h)["task"] is None
        new = claim(t)
        assert new["task"]["task_id"] == task and new["lease"]["fencing_token"] == old["fencing_token"] + 1
        error = expect_error(call(h, "agora.task.update", task_id=task, lease_token=old["token"], status="completed"), 409, "conflict")
        assert "stale" in error["message"]
        done = ok(call(t, "agora.task.update", task_id=task, lease_token=new["lease"]["token"], status="completed", result=1))
    assert (done["status"], done["claimed_by"], done["attempts"]) == ("completed", taker["agent_id"], 1)
    assert [h["to_status"] for h in history(customer, task)] == ["pending", "in_progress", "pending", "in_progress", "completed"]


def test_a_dead_lettered_task_reassigned_is_back_in_the_queue_for_its_new_target(hub, admin):
    customer = new_tenant(admin, hub)
    failing, gpu = register(customer), register(customer, "gpu")
    task = dead_letter(hub, customer, failing)
    moved = ok(call(customer, "agora.task.reassign", task_id=task, required_capabilities=["gpu", "gpu"]))
    assert (moved["status"], moved["assignee"], moved["required_capabilities"]) == ("pending", None, ["gpu"])
    assert (moved["attempts"], moved["finished_at"], moved["preferred_agent"]) == (0, None, gpu["agent_id"])
    assert history(customer, task)[-1]["note"] == "reassigned to agents with gpu"
    with hub.client(failing["agent_token"]) as c:
        assert claim(c)["task"] is None  # it lacks the capability
    with hub.client(gpu["agent_token"]) as c:
        assert claim(c)["task"]["task_id"] == task


def test_a_parked_claimer_wakes_the_moment_a_task_is_reassigned_to_it(hub, admin):
    customer = new_tenant(admin, hub)
    elsewhere, waiting = register(customer), register(customer, "night-shift")
    task = assign(customer, assignee=elsewhere["agent_id"])["task_id"]
    waiter, result = parked_claim(hub, waiting["agent_token"])
    sent = time.monotonic()
    ok(call(customer, "agora.task.reassign", task_id=task, required_capabilities=["night-shift"]))
    waiter.join(20)
    assert result["claim"]["task"]["task_id"] == task
    assert result["at"] - sent < 1.5  # woken, not polled


async def test_reassignments_and_priorities_are_events_on_the_assignee_s_stream(hub, admin):
    from .test_streams import connect, frame

    customer = new_tenant(admin, hub)
    first, second = register(customer), register(customer)
    task = assign(customer, assignee=first["agent_id"])["task_id"]
    async with connect(hub, second["agent_token"], types="task_*") as ws:
        ok(call(customer, "agora.task.reassign", task_id=task, assignee=second["agent_id"]))
        ok(call(customer, "agora.task.set_priority", task_id=task, priority="high"))
        seen = [await frame(ws) for _ in range(2)]
    assert [(f["type"], f["data"]["task_id"], f["data"]["from_status"], f["data"]["assignee"], f["data"]["priority"]) for f in seen] == [
        ("task_reassigned", task, "pending", second["agent_id"], 2), ("task_updated", task, "pending", second["agent_id"], 3)
    ]


def test_a_reassigned_task_wakes_only_the_claimers_of_its_new_target():
    gpu = {"agent_id": "agent_1", "agent_name": "gpu-box", "capabilities": ["gpu"]}
    cpu = {"agent_id": "agent_2", "agent_name": "cpu-box", "capabilities": ["cpu"]}

    def woken(**task: Any) -> set[str]:
        event = Event("task_reassigned", "t", {"task_id": "task_1", "assignee": None, "required_capabilities": [], **task})
        return {a["agent_name"] for a in (gpu, cpu) if set(keys_for(event)) & set(claimer_keys("t", a))}

    assert woken(assignee="agent_2") == {"cpu-box"}
    assert woken(required_capabilities=["gpu"]) == {"gpu-box"}


def test_refused_reassignments_change_nothing(hub, admin):
    customer = new_tenant(admin, hub)
    mine, other = register(customer), register(customer)
    task = assign(customer, assignee=mine["agent_id"])["task_id"]
    before, steps = get(customer, task), len(history(customer, task))
    stranger = register(new_tenant(admin, hub))
    cases = [
        ({"assignee": "nobody-" + unique()}, 404, "not_found"),
        ({"assignee": stranger["agent_id"]}, 404, "not_found"),  # another tenant's agent is nobody here
        ({"assignee": other["agent_id"], "required_capabilities": ["x"]}, 422, "invalid_argument"),
        ({}, 422, "invalid_argument"),
        ({"required_capabilities": ["no spaces allowed"]}, 422, "invalid_argument"),
        ({"assignee": other["agent_id"], "reason": "x" * 1001}, 422, "invalid_argument"),
    ]
    for args, status, code in cases:
        expect_error(call(customer, "agora.task.reassign", task_id=task, **args), status, code)
    expect_error(call(customer, "agora.task.reassign", task_id="task_" + "0" * 24, assignee=other["agent_id"]), 404, "not_found")
    with hub.client(other["agent_token"]) as c:  # neither made it nor was given it
        expect_error(call(c, "agora.task.reassign", task_id=task, assignee=other["agent_id"]), 403, "permission_denied")
    assert get(customer, task) == before and len(history(customer, task)) == steps
    ok(call(customer, "agora.task.cancel", task_id=task))
    cancelled = get(customer, task)
    expect_error(call(customer, "agora.task.reassign", task_id=task, assignee=other["agent_id"]), 409, "conflict")
    assert get(customer, task) == cancelled


def test_a_task_is_never_reassigned_to_another_tenant_s_agent(hub, admin):
    """The stranger's own task, given to an agent it cannot see: the very answer of an agent that does not exist."""
    theirs = register(admin)
    stranger = new_tenant(admin, hub)
    task = assign(stranger, assignee=register(stranger)["agent_id"])["task_id"]
    ghost = "agent_" + "0" * 24
    real = call(stranger, "agora.task.reassign", task_id=task, assignee=theirs["agent_id"])
    assert real.status_code == 404 and _answer(real, theirs["agent_id"]) == _answer(
        call(stranger, "agora.task.reassign", task_id=task, assignee=ghost), ghost
    )
    by_name = call(stranger, "agora.task.reassign", task_id=task, assignee=theirs["agent_name"])
    assert _answer(by_name, theirs["agent_name"]) == _answer(real, theirs["agent_id"])
    assert get(stranger, task)["status"] == "pending" and len(history(stranger, task)) == 1


def test_a_new_priority_changes_the_claim_order(hub, admin):
    customer = new_tenant(admin, hub)
    skill = unique("skill")  # queued before any agent has it: no task prefers one, the order alone decides
    first, second, third = (assign(customer, required_capabilities=[skill], priority="low")["task_id"] for _ in range(3))
    raised = ok(call(customer, "agora.task.set_priority", task_id=third, priority="urgent"))
    assert raised["priority"] == "urgent" and raised["status"] == "pending"
    ok(call(customer, "agora.task.set_priority", task_id=second, priority=3))  # the 1-4 scale works too
    assert history(customer, third)[-1]["note"] == "priority low → urgent"
    worker = register(customer, skill)
    with hub.client(worker["agent_token"]) as c:
        order = [claim(c) for _ in range(3)]
        assert [o["task"]["task_id"] for o in order] == [third, second, first]
        running = ok(call(customer, "agora.task.set_priority", task_id=first, priority="high"))  # running: allowed
        assert (running["status"], running["priority"]) == ("in_progress", "high")
        ok(call(c, "agora.task.update", task_id=first, lease_token=order[2]["lease"]["token"], status="completed"))
    done = get(customer, first)
    expect_error(call(customer, "agora.task.set_priority", task_id=first, priority="low"), 409, "conflict")
    for bad in ("extreme", 0, 5, None):
        expect_error(call(customer, "agora.task.set_priority", task_id=second, priority=bad), 422, "invalid_argument")
    assert get(customer, first) == done and get(customer, second)["priority"] == "high"


def test_the_dead_letter_is_requeued_oldest_first_in_bounded_batches(hub, admin):
    customer, other = new_tenant(admin, hub), new_tenant(admin, hub)
    agent, elsewhere = register(customer), register(other)
    kind = unique("kind")
    deads = [dead_letter(hub, customer, agent, task_type=kind) for _ in range(3)]
    others = [dead_letter(hub, customer, agent, task_type="other-kind") for _ in range(2)]
    foreign = dead_letter(hub, other, elsewhere, task_type=kind)
    alive = assign(customer, assignee=agent["agent_id"], task_type=kind)["task_id"]

    first = ok(call(customer, "agora.task.requeue_dead_letter", task_type=kind, limit=2))
    assert (first["task_ids"], first["requeued"], first["has_more"]) == (deads[:2], 2, True)
    rest = ok(call(customer, "agora.task.requeue_dead_letter", task_type=kind, limit=2))
    assert (rest["task_ids"], rest["has_more"]) == ([deads[2]], False)
    for task in deads:
        requeued = get(customer, task)
        assert (requeued["status"], requeued["attempts"], requeued["finished_at"]) == ("pending", 0, None)
        assert history(customer, task)[-1]["note"] == "requeued"
    assert {get(customer, t)["status"] for t in others} == {"dead_letter"}
    assert get(other, foreign)["status"] == "dead_letter" and get(customer, alive)["status"] == "pending"
    assert ok(call(customer, "agora.task.requeue_dead_letter"))["task_ids"] == others
    assert ok(call(customer, "agora.task.requeue_dead_letter"))["requeued"] == 0
    with hub.client(agent["agent_token"]) as c:  # the requeued tasks are claimable again
        assert claim(c, task_types=[kind])["task"]["task_id"] == deads[0]

    # Another tenant's dead letter: the admin reaches it by naming the tenant; a customer never does.
    other_tenant = get(other, foreign)["tenant_id"]
    expect_error(call(customer, "agora.task.requeue_dead_letter", tenant=other_tenant), 404, "not_found")
    assert get(other, foreign)["status"] == "dead_letter"
    assert ok(call(admin, "agora.task.requeue_dead_letter", tenant=other_tenant, task_type=kind))["task_ids"] == [foreign]
    for limit in (0, 1001):
        expect_error(call(customer, "agora.task.requeue_dead_letter", limit=limit), 422, "invalid_argument")


def test_an_agent_requeues_only_the_dead_tasks_it_created_or_was_given(hub, admin):
    customer = new_tenant(admin, hub)
    producer, worker, bystander = register(customer), register(customer), register(customer)
    with hub.client(producer["agent_token"]) as p:
        made = dead_letter(hub, p, worker)  # created by producer, assigned to worker
    given = dead_letter(hub, customer, worker)
    neither = dead_letter(hub, customer, bystander)
    with hub.client(producer["agent_token"]) as p:
        assert ok(call(p, "agora.task.requeue_dead_letter"))["task_ids"] == [made]
    with hub.client(worker["agent_token"]) as w:
        assert ok(call(w, "agora.task.requeue_dead_letter"))["task_ids"] == [given]
    assert get(customer, neither)["status"] == "dead_letter"


def test_the_cli_reassigns_reprioritizes_and_requeues_the_dead_letter(sqlite_hub):
    with sqlite_hub.client() as admin:
        first, second = register(admin), register(admin)
        kind = unique("cli-kind")
        task = assign(admin, assignee=first["agent_id"], task_type=kind)["task_id"]
        moved = agora(sqlite_hub, "tasks", "reassign", task, "--assignee", second["agent_name"], "--reason", "rebalance")
        assert moved.returncode == 0 and moved.stdout.strip() == f"{task}: pending for {second['agent_id']}", moved.stderr
        assert agora(sqlite_hub, "tasks", "priority", task, "urgent").stdout.strip() == f"{task}: priority urgent"
        assert agora_json(sqlite_hub, "tasks", "reassign", task, "-c", "gpu")["required_capabilities"] == ["gpu"]
        dead = dead_letter(sqlite_hub, admin, first, task_type=kind)
        requeued = agora(sqlite_hub, "tasks", "requeue-dead", "--type", kind)
        assert requeued.returncode == 0 and requeued.stdout.split("\n")[:2] == [dead, "requeued 1 task(s)"], requeued.stdout
        assert agora_json(sqlite_hub, "tasks", "requeue-dead", "--type", kind) == {"task_ids": [], "requeued": 0, "has_more": False}
    refused = agora(sqlite_hub, "tasks", "priority", task, "extreme")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    done = agora(sqlite_hub, "tasks", "reassign", "task_" + "0" * 24, "--assignee", second["agent_id"])
    assert done.returncode == 1 and "not_found" in done.stderr
