"""The tenancy matrix: every tool input that names something of a tenant's (an agent, task, workflow, instance, …)
is called by another tenant's customer key and by another tenant's agent, once naming the real thing and once a
thing that does not exist. The two answers must be the same — status, code, message and details, the name aside —
so a stranger learns nothing, not even that it exists. A new tool input that names something must join the table.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import call, ok, unique
from tests.test_catalog import EXAMPLES, _agent, _instance, _listed, _person, _review, _stdio_server, _workflow
from tests.test_catalog import _conversation as _talk

Builder = Callable[[httpx.Client], dict[str, Any]]

# (tool, input field) → a real input naming the admin tenant's thing in that field (EXAMPLES when it names one).
MATRIX: dict[tuple[str, str], Builder] = {
    **{(tool, "agent"): EXAMPLES[tool] for tool in (
        "agora.agents.get", "agora.agents.heartbeat", "agora.agents.update", "agora.agents.deregister",
        "agora.messaging.receive", "agora.messaging.ack", "agora.messaging.subscribe", "agora.task.claim",
        "agora.task.claim_batch", "agora.task.heartbeat", "agora.task.emit")},  # fmt: skip
    ("agora.messaging.ack", "message_ids"): EXAMPLES["agora.messaging.ack"],
    ("agora.messaging.unsubscribe", "subscription_id"): EXAMPLES["agora.messaging.unsubscribe"],
    ("agora.task.list", "agent"): lambda a: {"agent": _agent(a)},
    ("agora.task.list", "workflow_id"): lambda a: {"workflow_id": _workflow(a)},
    **{(tool, "task_id"): EXAMPLES[tool] for tool in (
        "agora.task.heartbeat", "agora.task.update", "agora.task.cancel", "agora.task.requeue", "agora.task.reassign",
        "agora.task.set_priority", "agora.task.get", "agora.task.history", "agora.a2a.update", "agora.task.emit",
        "agora.task.watch")},  # fmt: skip
    ("agora.messaging.send", "to_agent"): lambda a: {"to_agent": _agent(a), "content": "hi"},
    ("agora.messaging.search", "from_agent"): lambda a: {"from_agent": _agent(a)},
    ("agora.messaging.search", "to_agent"): lambda a: {"to_agent": _agent(a)},
    ("agora.task.assign", "assignee"): lambda a: {"task_type": "review", "assignee": _agent(a)},
    **{(tool, "tenant"): lambda a: {"tenant": "default"} for tool in (
        "agora.messaging.search", "agora.task.requeue_dead_letter", "agora.admin.keys.list", "agora.query.activity",
        "agora.query.agents", "agora.task.list")},  # fmt: skip
    ("agora.admin.keys.create", "tenant"): lambda a: {"kind": "customer", "tenant": "default"},
    ("agora.users.create", "tenant"): lambda a: {"email": f"{unique('p')}@example.com", "role": "viewer", "tenant": "default"},
    ("agora.users.list", "tenant"): lambda a: {"tenant": "default"},
    ("agora.memberships.set", "tenant"): lambda a: {"user": _person(a), "role": "viewer", "tenant": "default"},
    ("agora.memberships.remove", "tenant"): lambda a: {"user": _person(a), "tenant": "default"},
    ("agora.mcp_servers.register", "tenant"): lambda a: {**_stdio_server(), "tenant": "default"},
    **{(tool, "workflow_id"): EXAMPLES[tool] for tool in (
        "agora.workflow.status", "agora.workflow.modify", "agora.workflow.cancel", "agora.workflow.signal")},
    ("agora.workflow.signal", "step"): EXAMPLES["agora.workflow.signal"],
    ("agora.workflow.run", "workflow_name"): EXAMPLES["agora.workflow.run"],
    **{(tool, "schedule"): EXAMPLES[tool] for tool in (
        "agora.schedules.get", "agora.schedules.update", "agora.schedules.pause", "agora.schedules.resume",
        "agora.schedules.delete", "agora.schedules.run_now", "agora.schedules.history")},  # fmt: skip
    ("agora.marketplace.unlist", "listing"): lambda a: {"listing": _unlisted(a)},
    ("agora.marketplace.get_listing", "listing"): lambda a: {"listing": _unlisted(a)},
    ("agora.marketplace.create_instance", "agent_id"): lambda a: {"agent_id": _unlisted(a)},
    ("agora.marketplace.deploy", "agent_id"): lambda a: {"agent_id": _unlisted(a)},
    ("agora.marketplace.list_instances", "listing"): lambda a: {"listing": _unlisted(a)},
    **{(tool, "instance_id"): EXAMPLES[tool] for tool in (
        "agora.marketplace.get_instance", "agora.marketplace.pause_instance", "agora.marketplace.resume_instance",
        "agora.marketplace.terminate_instance", "agora.hosting.credentials", "agora.hosting.report")},  # fmt: skip
    ("agora.marketplace.execute", "instance_id"): lambda a: {"instance_id": _instance(a, "running"), "endpoint": "add", "timeout": 1},
    ("agora.hosting.assigned", "node"): lambda a: {"node": "catalog-node"} if EXAMPLES["agora.marketplace.unlist"](a) else {},
    ("agora.admin.override", "target_id"): EXAMPLES["agora.admin.override"],
    ("agora.admin.audit", "target_id"): lambda a: {"target_id": _agent(a)},
    ("agora.admin.keys.revoke", "key_id"): EXAMPLES["agora.admin.keys.revoke"],
    ("agora.marketplace.chat", "conversation_id"): lambda a: {"message": "and the second one?", "conversation_id": _conversation(a)},
    ("agora.conversations.get", "conversation_id"): lambda a: {"conversation_id": _talk(a)},
    ("agora.conversations.send", "conversation_id"): lambda a: {"conversation_id": _talk(a), "text": "hello?"},
    ("agora.conversations.list", "agent"): lambda a: {"agent": _agent(a)},
    ("agora.conversations.list", "tenant"): lambda a: {"tenant": "default"},
    ("agora.conversations.get", "tenant"): lambda a: {"conversation_id": _talk(a), "tenant": "default"},
    ("agora.conversations.send", "tenant"): lambda a: {"conversation_id": _talk(a), "tenant": "default", "text": "hello?"},
    ("agora.billing.set_budget", "notify_agent"): lambda a: {"monthly_limit": "100", "notify_agent": _agent(a)},
    ("agora.reviews.list", "listing"): lambda a: {"listing": _unlisted(a)},
    ("agora.reviews.write", "listing"): lambda a: {"listing": _unlisted(a), "rating": 5},
    # A buyer's review of the admin's listing: no one else may change it or answer it (its publisher aside).
    ("agora.reviews.edit", "review_id"): lambda a: {"review_id": _review(a)[2], "rating": 1},
    ("agora.reviews.withdraw", "review_id"): lambda a: {"review_id": _review(a)[2]},
    ("agora.reviews.respond", "review_id"): lambda a: {"review_id": _review(a)[2], "text": "not mine to answer"},
    ("agora.reviews.hide", "review_id"): lambda a: {"review_id": _review(a)[2], "reason": "not mine to hide"},
}

# Inputs that look like names but name nothing a stranger could probe (new things, tools, free labels), or that are
# tried elsewhere.
NOT_IN_MATRIX = {
    ("agora.agents.register_capability", "agent_id"): "v4's name of the caller's own agent, made if it is not there",
    ("agora.mcp_servers.remove", "name"): "a tenant's own server needs an upstream a customer may reach: "
    "test_gateway.py::test_a_tenant_s_server_is_seen_by_that_tenant_only (the admin's are shared, seen by all)",
    ("agora.workflow.create", "workflow_name"): "the name of a new workflow run",
    ("agora.workflow.define", "workflow_name"): "the caller's own new definition",
    ("agora.schedules.create", "name"): "the caller's own new schedule (names are per tenant)",
    ("agora.mcp_servers.register", "name"): "a new server's name (per tenant)",
    ("agora.hosting.register_node", "name"): "a node's own name",
    ("agora.admin.keys.create", "name"): "a label of the new key",
    ("agora.users.create", "name"): "how the console shows the new person",
    ("agora.admin.keys.create", "agent"): "admin only: a tenant key never gets past the scope check",
    ("agora.discovery.schema", "name"): "a tool's name: the catalog is public",
    ("agora.tools.call", "name"): "a tool's name: the catalog is public",
    ("agora.tools.start", "name"): "a tool's name: the catalog is public",
    ("agora.messaging.receive", "conversation_id"): "a filter over the caller's own inbox",
    ("agora.task.assign", "workflow_id"): "a label stored on the caller's own task",
    ("agora.task.assign", "conversation_id"): "the caller's own conversation (conversation ids are per tenant)",
    ("agora.conversations.send", "to_agent"): "the caller's own conversation with another tenant's agent: "
    "test_conversations.py::test_a_conversation_is_continued_with_its_own_tenant_s_agents_only",
    ("agora.billing.report_usage", "report_id"): "the instance's own new report (per instance: the caller's instance is implied)",
    ("agora.billing.report_usage", "task_id"): "a label stored on the caller's own report",
    ("agora.task.reassign", "assignee"): "a stranger's own task given to someone else's agent: "
    "test_task_intervention.py::test_a_task_is_never_reassigned_to_another_tenant_s_agent (here the task is the admin's)",
}

def _conversation(admin: httpx.Client) -> str:
    """A marketplace chat conversation of the admin's tenant."""
    return ok(call(admin, "agora.marketplace.chat", message="how many listings are there?"))["conversation_id"]


def _unlisted(admin: httpx.Client) -> str:
    """A listing taken off the marketplace: its publisher's alone (a listed one is public, seen by every tenant)."""
    listing = _listed(admin)
    ok(call(admin, "agora.marketplace.unlist", listing=listing))
    return listing


_REFERENCE = re.compile(r"(_id|_ids|^agent|_agent|^assignee|^tenant|^listing|^instance|^task|^workflow_name|^node|^name|^step|^schedule)$")


def _ghost(value: Any) -> Any:
    """A value of the same form naming nothing: a fresh id with the same prefix, or a fresh name."""
    if isinstance(value, list):
        return [_ghost(v) for v in value]
    prefix, sep, _ = value.partition("_")
    if sep and re.fullmatch(r"[a-z0-9]+_[0-9a-f]{16,24}", value):
        return f"{prefix}_{secrets.token_hex(8)}"
    return value[: max(1, len(value) - 9)] + secrets.token_hex(4) if len(value) > 9 else unique("ghost")


def _answer(response: httpx.Response, named: Any) -> tuple[Any, ...]:
    """What a caller learns: the status and the answer (an error's code, message and details), the name taken out."""
    text = response.text
    for value in named if isinstance(named, list) else [named]:
        text = text.replace(orjson.dumps(value).decode()[1:-1], "<name>")
    if response.status_code == 200:
        return 200, re.sub(r"\b[a-z0-9]+_[0-9a-f]{24}\b", "<new id>", text)  # what the call itself made
    error = orjson.loads(text)["error"]
    return response.status_code, error["code"], error["message"], orjson.dumps(error["details"], option=orjson.OPT_SORT_KEYS)


@pytest.fixture
def strangers(admin: httpx.Client, hub) -> Iterator[dict[str, httpx.Client]]:
    """Another tenant's customer key, and an agent of that tenant."""
    created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("stranger")))
    with hub.client(created["key"]) as customer:
        agent = ok(call(customer, "agora.agents.register", agent_name=unique("stranger")))
        with hub.client(agent["agent_token"]) as as_agent:
            yield {"customer": customer, "agent": as_agent}


def test_the_matrix_covers_every_tool_input_that_names_something():
    from agora.catalog.registry import build_catalog

    named = {(t.name, f) for t in build_catalog() for f in t.input_model.model_fields if _REFERENCE.search(f)}
    missing = named - MATRIX.keys() - NOT_IN_MATRIX.keys()
    assert not missing, f"add these to MATRIX (or NOT_IN_MATRIX, saying why): {sorted(missing)}"
    assert not (MATRIX.keys() | NOT_IN_MATRIX.keys()) - named, "the table names inputs the catalog no longer has"


@pytest.mark.parametrize(("tool", "field"), sorted(MATRIX), ids=[f"{t}.{f}" for t, f in sorted(MATRIX)])
def test_a_stranger_cannot_tell_someone_else_s_thing_from_nothing(admin, strangers, tool, field):
    args = MATRIX[tool, field](admin)
    real = args[field]
    ghost = {**args, field: _ghost(real)}
    for who, client in strangers.items():
        answered = _answer(call(client, tool, **args), real)
        assert answered == _answer(call(client, tool, **ghost), ghost[field]), (who, answered)
        assert answered[0] in (200, 403, 404), (who, answered)


def test_a_node_cannot_tell_another_node_s_instance_from_none(admin, hub):
    """The issue's case: hosting.credentials/report for an instance on another node answered differently."""
    other = ok(call(admin, "agora.hosting.register_node", name=unique("other-node"), capacity_cpu=1, capacity_memory_mb=64))
    theirs = EXAMPLES["agora.marketplace.get_instance"](admin)["instance_id"]  # placed on catalog-node
    with hub.client(other["agent_token"]) as node:
        for tool, extra in (("agora.hosting.credentials", {}), ("agora.hosting.report", {"status": "running"})):
            ghost = _ghost(theirs)
            foreign = call(node, tool, instance_id=theirs, **extra)
            assert foreign.status_code == 404, foreign.text
            assert _answer(foreign, theirs) == _answer(call(node, tool, instance_id=ghost, **extra), ghost)
    assert ok(call(admin, "agora.marketplace.get_instance", instance_id=theirs))["status"] == "starting"  # untouched


def test_instances_made_in_one_second_are_distinct_agents(admin):
    listing = _listed(admin)
    made = [ok(call(admin, "agora.marketplace.create_instance", agent_id=listing)) for _ in range(3)]
    assert len({m["instance_agent_name"] for m in made}) == len({m["instance_agent_id"] for m in made}) == 3, made


def test_new_ids_share_no_sequence_a_stranger_could_follow(admin):
    ids = [ok(call(admin, "agora.agents.register", agent_name=unique()))["agent_id"] for _ in range(20)]
    tails = [int(i.split("_", 1)[1][-16:], 16) for i in ids]
    gaps = {abs(b - a) for a, b in zip(tails, tails[1:])}
    assert min(gaps) > 1 << 20, ids  # 64 random bits apart, not a counter's step
    assert len({i[-16:] for i in ids}) == len(ids)
