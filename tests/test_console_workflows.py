"""The console's workflow pages without a browser: the DAG's layout, the forms' errors in place (bad JSON, a finished
run, a missing CSRF token), tenancy, and what the status tool now tells (a step's input, a rejection's comment)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from agora.transports.console.workflows import NODE_W, depths, history, layout, outputs
from agora_sdk.wire.workflows import StepStatus, WorkflowStatus
from tests.conftest import call, new_tenant, ok, until
from tests.hubproc import HubProcess
from tests.test_console_http import signed_in


def step(name: str, *deps: str, state: str = "pending", kind: str = "task") -> StepStatus:
    return StepStatus(name=name, kind=kind, state=state, depends_on=list(deps))


def test_a_diamond_is_laid_out_in_columns_by_depth_with_an_edge_per_dependency() -> None:
    steps = [step("fetch", state="completed"), step("left", "fetch", state="running"), step("right", "fetch"), step("join", "left", "right", "fetch")]
    assert depths(steps) == {"fetch": 0, "left": 1, "right": 1, "join": 2}
    drawing = layout(steps)
    x = {n.step.name: n.x for n in drawing.nodes}
    assert x["fetch"] < x["left"] == x["right"] < x["join"]
    assert len(drawing.edges) == 5 and [e.state for e in drawing.edges].count("completed") == 3
    assert drawing.width >= 3 * NODE_W and drawing.summary == "4 steps: 1 completed, 2 pending, 1 running"


def test_depths_follow_dependencies_declared_after_the_step() -> None:
    """(agora.workflow.modify can make a step depend on one added later in the list.)"""
    assert depths([step("a", "c"), step("b", "a"), step("c")]) == {"c": 0, "a": 1, "b": 2}


def test_the_output_is_the_last_steps_results_and_the_history_is_in_order() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    run = WorkflowStatus(
        workflow_id="wf_0123456789abcdef", workflow_name="w", status="completed", current_step=None, total_steps=2, progress=100,
        failure_policy="fail_fast", input={}, metadata={}, created_at=t, finished_at=t.replace(minute=5),
        steps=[
            StepStatus(name="ok", kind="approval", state="completed", depends_on=[], started_at=t.replace(minute=1), finished_at=t.replace(minute=3), result={"by": "al"}),
            StepStatus(name="go", kind="task", state="completed", depends_on=["ok"], started_at=t.replace(minute=3), finished_at=t.replace(minute=4), result=1),
        ],
    )  # fmt: skip
    assert outputs(run) == {"go": 1}
    assert [(m.step, m.what) for m in history(run)] == [
        ("", "workflow started"), ("ok", "waiting for a decision"), ("ok", "completed"), ("go", "started"), ("go", "completed"), ("", "workflow completed"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub-console-workflows")).start()
    yield hub
    hub.stop()


def csrf(client: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": client.cookies["agora_csrf"], "HX-Request": "true"}


def approval_run(api: httpx.Client, **extra: object) -> str:
    steps = [{"name": "sign_off", "kind": "approval"}, {"name": "after", "kind": "approval", "input": {"by": "${steps.sign_off.result.by}"}}]
    return str(ok(call(api, "agora.workflow.create", workflow_name="http-run", steps=steps, input={"n": 1}, **extra))["workflow_id"])


def test_the_pages_render_without_inline_style_and_filters_are_checked(hub: HubProcess) -> None:
    with hub.client() as api, signed_in(hub, hub.admin_key) as b:
        empty = b.get("/ui/workflows?status=failed")
        assert empty.status_code == 200 and "No failed workflows here" in empty.text
        workflow_id = approval_run(api)
        listed = b.get("/ui/workflows")
        assert listed.status_code == 200 and f"/ui/workflows/{workflow_id}" in listed.text
        page = b.get(f"/ui/workflows/{workflow_id}")
        assert page.status_code == 200 and 'data-step="sign_off" data-state="waiting"' in page.text
        assert "<svg" in page.text and 'role="img"' in page.text and "<title id=\"wf-dag-title\">" in page.text
        assert not re.search(r"\sstyle=", listed.text + page.text)
        assert b.get("/ui/workflows?status=lost").status_code == 400
        assert b.get("/ui/workflows?cursor=garbage").status_code == 400
        assert b.get("/ui/workflows/not-a-workflow-id").status_code == 422  # the tool refuses the id
        assert b.get("/ui/workflows/wf_0000000000000000").status_code == 404
        with b.stream("GET", f"/ui/live/workflow?workflow={workflow_id}") as live:
            lines = live.iter_lines()
            assert live.status_code == 200 and next(line for line in lines if line.startswith("event:")) == "event: workflow"
            assert 'data-step="sign_off"' in "".join(itertools.takewhile(bool, lines))  # the event's data, up to its blank line


def test_a_bad_signal_is_answered_in_place_and_changes_nothing(hub: HubProcess) -> None:
    with hub.client() as api, signed_in(hub, hub.admin_key) as b:
        workflow_id = approval_run(api)
        url = f"/ui/workflows/{workflow_id}"
        bad_json = b.post(url + "/signal", data={"step": "sign_off", "decision": "approve", "data": "{nope"}, headers=csrf(b))
        assert bad_json.status_code == 400 and 'role="alert"' in bad_json.text and "not valid JSON" in bad_json.text
        not_waiting = b.post(url + "/signal", data={"step": "after", "decision": "approve"}, headers=csrf(b))
        assert not_waiting.status_code == 409 and "not waiting" in not_waiting.text
        no_step = b.post(url + "/signal", data={"step": "ghost", "decision": "reject"}, headers=csrf(b))
        assert no_step.status_code == 400 and "no such step" in no_step.text
        no_csrf = b.post(url + "/cancel", data={"reason": "x"}, headers={"HX-Request": "true"})
        assert no_csrf.status_code == 403
        assert b.post(url + "/explode", data={}, headers=csrf(b)).status_code == 404
        assert ok(call(api, "agora.workflow.status", workflow_id=workflow_id))["steps"][0]["state"] == "waiting"

        approved = b.post(url + "/signal", data={"step": "sign_off", "decision": "approve", "data": '{"by": "ann"}', "note": "fine"}, headers=csrf(b))
        assert approved.status_code == 200 and 'role="status"' in approved.text and "Approved step" in approved.text
        status = ok(call(api, "agora.workflow.status", workflow_id=workflow_id))
        assert status["steps"][1]["state"] == "waiting" and status["steps"][1]["input"] == {"by": "ann"}  # the data passed on

        rejected = b.post(url + "/signal", data={"step": "after", "decision": "reject", "note": "too late"}, headers=csrf(b))
        assert rejected.status_code == 200 and "Rejected step" in rejected.text
        status = ok(call(api, "agora.workflow.status", workflow_id=workflow_id))
        assert status["status"] == "failed" and status["steps"][1]["error"].endswith(": too late")
        again = b.post(url + "/cancel", data={"reason": "x"}, headers=csrf(b))
        assert again.status_code == 409 and "already failed" in again.text


def test_a_step_input_is_shown_as_written_until_it_starts(hub: HubProcess) -> None:
    with hub.client() as api:
        workflow_id = approval_run(api)
        later = ok(call(api, "agora.workflow.status", workflow_id=workflow_id))["steps"][1]
    assert later["state"] == "pending" and later["input"] == {"by": "${steps.sign_off.result.by}"}


def test_a_tenant_cannot_see_or_touch_another_tenants_run(hub: HubProcess) -> None:
    with hub.client() as admin:
        mine, theirs = new_tenant(admin, hub), new_tenant(admin, hub)
    with mine, theirs:
        foreign = approval_run(theirs)
        own = approval_run(mine)
        key = mine.headers["Authorization"].removeprefix("Bearer ")
        with signed_in(hub, key) as b:
            assert b.get(f"/ui/workflows/{foreign}").status_code == 404
            listed = b.get("/ui/workflows").text
            assert own in listed and foreign not in listed
            for action, data in (("signal", {"step": "sign_off", "decision": "approve"}), ("cancel", {})):
                assert b.post(f"/ui/workflows/{foreign}/{action}", data=data, headers=csrf(b)).status_code == 404
            cancelled = b.post(f"/ui/workflows/{own}/cancel", data={"reason": "mine to stop"}, headers=csrf(b))
            assert cancelled.status_code == 200 and "Workflow cancelled." in cancelled.text
        assert ok(call(theirs, "agora.workflow.status", workflow_id=foreign))["status"] == "running"
        assert until(lambda: ok(call(mine, "agora.workflow.status", workflow_id=own))["status"] == "cancelled", "not cancelled")
