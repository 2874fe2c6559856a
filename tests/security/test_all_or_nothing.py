"""An error answer means nothing changed, and a change is never answered with an error (the caller would retry and
do it twice). Each case here was a state change followed by a 4xx or 500. (A refused MCP registration leaving no
trace is in ``test_egress.py``.)"""

from __future__ import annotations

from urllib.parse import unquote

from tests.conftest import call, expect_error, ok, unique


def _instances(client) -> list[dict]:
    return ok(call(client, "agora.marketplace.list_instances", limit=100))["instances"]


def test_a_step_for_an_agent_named_outside_latin_1_is_added_and_answered_200_with_a_readable_warning(admin):
    workflow_id = ok(call(admin, "agora.workflow.create", workflow_name="greek", steps=[{"name": "alpha", "agent": unique("absent")}]))["workflow_id"]
    response = call(admin, "agora.workflow.modify", workflow_id=workflow_id, add=[{"name": "omega", "agent": unique("Ωmega")}])
    assert response.status_code == 200, response.text
    steps = [s["name"] for s in ok(call(admin, "agora.workflow.status", workflow_id=workflow_id))["steps"]]
    assert steps.count("omega") == 1, steps
    warning = response.headers["Agora-Warnings"]  # the step waits for an agent that is not there
    assert warning.isascii(), warning  # on the wire: percent-encoded UTF-8
    assert "Ωmega" in unquote(warning), warning


def test_a_deploy_answering_the_wrong_agent_creates_no_instance_however_often_it_is_retried(admin):
    customer = admin  # the admin may deploy without a node that runs anything: the instance stays 'starting'
    ok(call(admin, "agora.hosting.register_node", name="atomic-node", capacity_cpu=1000, capacity_memory_mb=10_000_000))
    listing = ok(call(admin, "agora.marketplace.publish", agent_name=unique("lst"), repository={"url": "https://example.com/a.git"},
                      build_config={"start_command": "python agent.py"}))["listing_id"]  # fmt: skip
    before = {i["instance_id"] for i in _instances(customer)}
    for _ in range(3):
        error = expect_error(call(customer, "agora.marketplace.deploy", agent_id=listing, reply_to=unique("nobody")), 404, "not_found")
        assert "nobody" in error["message"]
    assert {i["instance_id"] for i in _instances(customer)} == before

    answered = ok(call(customer, "agora.agents.register", agent_name=unique("orchestrator")))
    deployed = ok(call(customer, "agora.marketplace.deploy", agent_id=listing, reply_to=answered["agent_id"]))
    assert deployed["outcome"] == "deploy_confirm" and deployed["message_id"]
    assert {i["instance_id"] for i in _instances(customer)} == before | {deployed["instance"]["instance_id"]}
