"""Workflows with real agents (the SDK runtime): data flowing through a pipeline, a diamond, conditions, approvals,
for_each, failure policies, cancel, bad definitions, and a hub killed mid-workflow."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from agora_sdk import Agent, AsyncAgoraClient
from agora_sdk.errors import Conflict, InvalidArgument, NotFound

from .conftest import call, expect_error, unique
from .hubproc import HubProcess
from .test_agent_runtime import agent_for, eventually
from .test_cli import agora, agora_json


@contextlib.asynccontextmanager
async def crew(hub: HubProcess, tag: str, fail: set[str] = frozenset()) -> AsyncIterator[dict[str, list[Any]]]:
    """Three agents: extract, transform (doubles numbers) and load; each records what it was given."""
    seen: dict[str, list[Any]] = {"extract": [], "transform": [], "load": [], "check": []}
    agents: list[Agent] = []
    for role in ("extract", "transform", "load"):
        agent = agent_for(hub, f"{tag}-{role}", capabilities=[f"{tag}-{role}"])

        @agent.on_task()
        async def work(task: Any, role: str = role) -> Any:
            seen.setdefault(task.task_type, []).append(task.payload)
            if task.task_type in fail:
                raise RuntimeError(f"{task.task_type} broke")
            if task.task_type == "extract":
                return {"rows": [1, 2, 3], "count": 3}
            if task.task_type in ("transform", "double"):
                rows = task.payload.get("rows") or [task.payload.get("item")]
                return {"rows": [r * 2 for r in rows]}
            return {"ok": True, "got": task.payload}

        agents.append(agent)
    for agent in agents:
        await agent.start()
    try:
        yield seen
    finally:
        for agent in agents:
            await agent.stop()


async def finished(client: AsyncAgoraClient, workflow_id: str) -> Any:
    async def done() -> bool:
        return (await client.workflow.status(workflow_id)).status != "running"

    await eventually(done, timeout=30)
    return await client.workflow.status(workflow_id)


def states(status: Any) -> dict[str, str]:
    return {s.name: s.state for s in status.steps}


async def test_the_seeds_data_pipeline_runs_in_order_with_results_flowing(hub):
    """On both engines: on PostgreSQL the steps' tasks, which the workflow follows, are claimed and completed in
    transactions rather than the queue's one-statement transitions."""
    tag = unique("pipe")
    async with crew(hub, tag) as seen, AsyncAgoraClient(hub.url, hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="data_pipeline",
            steps=[
                {"name": "extract", "agent": f"{tag}-extract", "input": {"source": "${input.source}"}},
                {"name": "transform", "agent": f"{tag}-transform", "input": {"rows": "${steps.extract.result.rows}"}},
                {"name": "load", "agent": f"{tag}-load", "input": {"rows": "${steps.transform.result.rows}", "note": "from ${input.source}"}},
            ],
            assigned_agents=[f"{tag}-extract", f"{tag}-transform", f"{tag}-load"],
            input={"source": "db1"},
        )
        done = await finished(client, made.workflow_id)
        listed = await client.workflow.list(status="completed")
    assert made.workflow_id.startswith("wf_") and made.status == "running"
    assert done.status == "completed" and done.progress == 100 and done.total_steps == 3
    assert [s.state for s in done.steps] == ["completed"] * 3
    assert seen["extract"] == [{"source": "db1"}]
    assert seen["transform"] == [{"rows": [1, 2, 3]}]
    assert seen["load"] == [{"rows": [2, 4, 6], "note": "from db1"}]
    assert done.steps[2].result == {"ok": True, "got": {"rows": [2, 4, 6], "note": "from db1"}}
    assert done.steps[0].finished_at <= done.steps[1].started_at
    assert made.workflow_id in [w.workflow_id for w in listed]


async def test_a_diamond_joins_and_a_false_condition_skips_down_its_branch(sqlite_hub):
    tag = unique("dia")
    async with crew(sqlite_hub, tag) as seen, AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="diamond",
            steps=[
                {"name": "extract", "agent": f"{tag}-extract"},
                {"name": "left", "task_type": "transform", "agent": f"{tag}-transform", "input": {"rows": "${steps.extract.result.rows}"}},
                {"name": "right", "task_type": "transform", "required_capabilities": [f"{tag}-transform"],
                 "depends_on": ["extract"], "input": {"rows": [10]}},
                {"name": "join", "task_type": "load", "agent": f"{tag}-load", "depends_on": ["left", "right"],
                 "input": {"l": "${steps.left.result.rows}", "r": "${steps.right.result.rows}"}},
                {"name": "audit", "task_type": "load", "agent": f"{tag}-load", "depends_on": ["extract"],
                 "when": "steps.extract.result.count > 10"},
                {"name": "after_audit", "task_type": "load", "agent": f"{tag}-load", "depends_on": ["audit"]},
                {"name": "either", "task_type": "load", "agent": f"{tag}-load", "depends_on": ["audit", "join"]},
            ],
        )  # fmt: skip
        done = await finished(client, made.workflow_id)
    assert done.status == "completed"
    assert states(done) == {
        "extract": "completed", "left": "completed", "right": "completed", "join": "completed",
        "audit": "skipped", "after_audit": "skipped", "either": "completed",
    }  # fmt: skip
    assert {"l": [2, 4, 6], "r": [20]} in seen["load"]
    assert "condition is false" in next(s.error for s in done.steps if s.name == "audit")


async def test_for_each_fans_out_and_an_approval_waits_for_its_signal(sqlite_hub):
    tag = unique("fan")
    async with crew(sqlite_hub, tag), AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="fan",
            steps=[
                {"name": "extract", "agent": f"{tag}-extract"},
                {"name": "each", "kind": "for_each", "task_type": "double", "agent": f"{tag}-transform", "items": "${steps.extract.result.rows}"},
                {"name": "ok", "kind": "approval"},
                {"name": "load", "agent": f"{tag}-load", "input": {"all": "${steps.each.result}", "by": "${steps.ok.result.who}"}},
            ],
        )
        await eventually(lambda: _state(client, made.workflow_id, "ok", "waiting"))
        with pytest.raises(Conflict):
            await client.workflow.signal(made.workflow_id, "load", "approve")  # not waiting for a signal
        await client.workflow.signal(made.workflow_id, "ok", "approve", data={"who": "alice"})
        done = await finished(client, made.workflow_id)
    each = next(s for s in done.steps if s.name == "each")
    assert done.status == "completed" and len(each.task_ids) == 3
    assert each.result == [{"rows": [2]}, {"rows": [4]}, {"rows": [6]}]
    assert done.steps[-1].result["got"] == {"all": [{"rows": [2]}, {"rows": [4]}, {"rows": [6]}], "by": "alice"}


async def _state(client: AsyncAgoraClient, workflow_id: str, step: str, state: str) -> bool:
    return states(await client.workflow.status(workflow_id)).get(step) == state


@pytest.mark.parametrize("policy", ["fail_fast", "continue"])
async def test_a_failing_step_retries_then_fails_under_either_policy(sqlite_hub, policy):
    tag = unique("fail")
    async with crew(sqlite_hub, tag, fail={"transform"}) as seen, AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="fails",
            failure_policy=policy,
            steps=[
                {"name": "extract", "agent": f"{tag}-extract"},
                {"name": "transform", "agent": f"{tag}-transform", "retry": {"attempts": 2, "backoff_seconds": 0.05}},
                {"name": "load", "agent": f"{tag}-load"},
                {"name": "side", "task_type": "load", "agent": f"{tag}-load", "depends_on": ["extract"], "input": {"slow": True}},
            ],
        )
        done = await finished(client, made.workflow_id)
        transform = await client.task.get(next(s for s in done.steps if s.name == "transform").task_ids[0])
    assert transform.retry_backoff_seconds == 0.05
    assert done.status == "failed" and len(seen["transform"]) == 2  # two attempts, then the step failed
    step = {s.name: s for s in done.steps}
    assert step["transform"].state == "failed" and "transform broke" in step["transform"].error
    if policy == "continue":
        assert step["load"].state == "skipped" and step["side"].state == "completed"
    else:
        assert step["load"].state == "cancelled"


async def test_cancel_stops_a_workflow_and_its_running_tasks(sqlite_hub):
    rare = unique("rare-skill")
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="nobody home", steps=[{"name": "wait", "agent": unique("absent")}, {"name": "then", "required_capabilities": [rare]}]
        )
        cancelled = await client.workflow.cancel(made.workflow_id, reason="changed my mind")
        task = await client.task.get(cancelled.steps[0].task_ids[0])
        with pytest.raises(Conflict):
            await client.workflow.cancel(made.workflow_id)
    assert "step 'wait': no agent" in made.warnings[0]
    assert made.warnings[1] == f"step 'then': no active agent has {rare} yet; its tasks wait for one"
    assert cancelled.status == "cancelled" and states(cancelled) == {"wait": "cancelled", "then": "cancelled"}
    assert task.status == "cancelled"


def test_bad_definitions_name_the_step_and_field(sqlite_hub):
    def refused(steps: list[dict[str, Any]]) -> dict[str, Any]:
        with sqlite_hub.client() as admin:
            return expect_error(call(admin, "agora.workflow.create", workflow_name="bad", steps=steps), 400, "invalid_argument")["details"]

    assert refused([{"name": "a", "depends_on": ["b"]}, {"name": "b", "depends_on": ["a"]}]) == {"step": "a", "field": "depends_on"}
    assert refused([{"name": "a", "depends_on": ["nope"]}]) == {"step": "a", "field": "depends_on"}
    assert refused([{"name": "a"}, {"name": "b", "input": {"x": "${steps.c.result.y}"}}, {"name": "c"}]) == {"step": "b", "field": "input"}
    assert refused([{"name": "a", "when": "__import__('os').system('x')"}]) == {"step": "a", "field": "when"}
    assert refused([{"name": "a", "when": "steps.a.result >"}]) == {"step": "a", "field": "when"}
    assert refused([{"name": "a"}, {"name": "a"}]) == {"step": "a", "field": "name"}
    with sqlite_hub.client() as admin:
        expect_error(call(admin, "agora.workflow.create", workflow_name="bad", steps=[{"name": "e", "kind": "for_each"}]), 422, "invalid_argument")
        expect_error(call(admin, "agora.workflow.status", workflow_id="wf_0000000000000000"), 404, "not_found")


async def test_a_hub_killed_mid_workflow_finishes_it_after_a_restart_with_each_step_once(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    tag = unique("crash")
    ran: list[str] = []
    agent = agent_for(hub, f"{tag}-worker", capabilities=["w"])

    @agent.on_task()
    async def work(task: Any) -> Any:
        ran.append(task.payload["n"])
        await asyncio.sleep(0.2)
        return {"n": task.payload["n"]}

    try:
        async with AsyncAgoraClient(hub.url, hub.admin_key) as client:
            made = await client.workflow.create(
                workflow_name="crash", steps=[{"name": f"s{i}", "agent": f"{tag}-worker", "input": {"n": f"s{i}"}} for i in range(6)]
            )
            await agent.start()
            await eventually(lambda: len(ran) >= 2)
            hub.stop(signal.SIGKILL)
            hub.start()
            done = await finished(client, made.workflow_id)
    finally:
        await agent.stop()
        hub.stop()
    assert done.status == "completed" and [s.state for s in done.steps] == ["completed"] * 6
    for step in done.steps:  # each step's task completed once (a task interrupted by the crash was retried, not doubled)
        assert len(step.task_ids) == 1
    assert sorted(set(ran)) == [f"s{i}" for i in range(6)]


async def test_the_dag_is_drawn_by_the_cli_and_as_mermaid(sqlite_hub):
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="drawn",
            steps=[
                {"name": "fetch", "agent": unique("absent")},
                {"name": "left", "depends_on": ["fetch"]},
                {"name": "right", "depends_on": ["fetch"]},
                {"name": "sign_off", "kind": "approval", "depends_on": ["left", "right"]},
            ],
        )
        status = await client.workflow.status(made.workflow_id, mermaid=True)
    drawn = agora(sqlite_hub, "workflows", "show", made.workflow_id)
    listed = agora_json(sqlite_hub, "workflows", "ls", "--status", "running")
    missing = agora(sqlite_hub, "workflows", "show", "wf_0000000000000000")
    assert status.mermaid.startswith("flowchart TD") and "fetch --> left" in status.mermaid and "right --> sign_off" in status.mermaid
    assert 'sign_off["sign_off (approval)<br/>pending"]:::pending' in status.mermaid
    assert drawn.returncode == 0 and "fetch" in drawn.stdout and "running" in drawn.stdout and "→ sign_off (above)" in drawn.stdout
    assert made.workflow_id in [w["workflow_id"] for w in listed["workflows"]]
    assert missing.returncode != 0 and "not_found" in missing.stderr and "Traceback" not in missing.stderr


async def test_a_saved_definition_runs_many_times_at_its_versions(sqlite_hub):
    tag = unique("saved")
    name = unique("etl")
    async with crew(sqlite_hub, tag) as seen, AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        first = await client.workflow.define(name, [{"name": "extract", "agent": f"{tag}-extract", "input": {"run": "${input.run}"}}])
        second = await client.workflow.define(name, [
            {"name": "extract", "agent": f"{tag}-extract", "input": {"run": "${input.run}"}},
            {"name": "load", "agent": f"{tag}-load", "input": {"rows": "${steps.extract.result.rows}"}},
        ], failure_policy="continue")  # fmt: skip
        runs = [await client.workflow.run(name, input={"run": n}) for n in (1, 2)]
        old = await client.workflow.run(name, version=1, input={"run": 3})
        done = [await finished(client, r.workflow_id) for r in [*runs, old]]
        with pytest.raises(NotFound):
            await client.workflow.run(unique("never-defined"))
    assert (first.version, second.version) == (1, 2) and second.total_steps == 2
    assert [d.total_steps for d in done] == [2, 2, 1] and all(d.status == "completed" for d in done)
    assert done[0].failure_policy == "continue" and done[0].metadata == {"definition_version": 2}
    assert sorted(p["run"] for p in seen["extract"]) == [1, 2, 3]


async def test_a_running_workflow_is_modified_and_refuses_changes_to_started_steps(sqlite_hub):
    tag = unique("mod")
    async with crew(sqlite_hub, tag) as seen, AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        made = await client.workflow.create(
            workflow_name="modified",
            steps=[
                {"name": "wait", "kind": "approval"},
                {"name": "transform", "agent": unique("absent"), "input": {"rows": [1]}},
                {"name": "spare", "task_type": "load", "agent": f"{tag}-load"},
                {"name": "load", "agent": f"{tag}-load", "input": {"rows": "${steps.transform.result.rows}"}},
            ],
        )
        changed = await client.workflow.modify(
            made.workflow_id,
            reassign={"transform": f"{tag}-transform"},
            remove=["spare"],
            add=[{"name": "audit", "task_type": "load", "agent": f"{tag}-load", "depends_on": ["transform"], "input": {"audit": True}}],
        )
        with pytest.raises(Conflict):
            await client.workflow.modify(made.workflow_id, reassign={"wait": f"{tag}-load"})  # started: waiting for its signal
        with pytest.raises(InvalidArgument):
            await client.workflow.modify(made.workflow_id, depends_on={"transform": ["load"]})  # a cycle
        await client.workflow.signal(made.workflow_id, "wait", "approve")
        done = await finished(client, made.workflow_id)
    assert [s.name for s in changed.steps] == ["wait", "transform", "load", "audit"]
    assert next(s for s in changed.steps if s.name == "load").depends_on == ["transform"]  # spare's dependency, spliced
    assert done.status == "completed" and all(s.state == "completed" for s in done.steps)
    assert seen["transform"] == [{"rows": [1]}] and {"audit": True} in seen["load"] and {"rows": [2]} in seen["load"]


async def test_every_change_of_a_workflow_is_an_event_on_the_live_stream(sqlite_hub):
    from .test_streams import connect, frame

    async with connect(sqlite_hub, sqlite_hub.admin_key, types="workflow_*") as ws:
        async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
            made = await client.workflow.create(workflow_name="watched", steps=[{"name": "ok", "kind": "approval"}])
            await eventually(lambda: _state(client, made.workflow_id, "ok", "waiting"))
            await client.workflow.signal(made.workflow_id, "ok", "approve")
        seen = []
        while not seen or seen[-1]["type"] != "workflow_completed":
            got = await frame(ws)
            if got["data"]["workflow_id"] == made.workflow_id:  # the session's hub runs other tests' workflows too
                seen.append(got)
    assert [(f["type"], f["data"].get("step"), f["data"].get("state")) for f in seen] == [
        ("workflow_created", None, None), ("workflow_updated", "ok", "waiting"), ("workflow_updated", "ok", "completed"),
        ("workflow_completed", None, None),
    ]
