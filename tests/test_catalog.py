"""The catalog, the REST door, OpenAPI, discovery and the stored services table all agree."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import jsonschema
import pytest

from .conftest import call, ok, unique

# A real, valid input for every tool. A tool added to the catalog without one fails test_every_tool_has_an_example.
# The input of a call the admin makes, or (the client that makes it, its input).
Example = Callable[[httpx.Client], dict[str, Any] | tuple[httpx.Client, dict[str, Any]]]


def _agent(admin: httpx.Client) -> str:
    return ok(call(admin, "agora.agents.register", agent_name=unique(), capabilities=["example"]))["agent_id"]


def _delivered(admin: httpx.Client) -> dict[str, Any]:
    """An agent with one message handed out to it (so it can be acked)."""
    agent = _agent(admin)
    ok(call(admin, "agora.messaging.send", to_agent=agent, content="ack me"))
    received = ok(call(admin, "agora.messaging.receive", agent=agent))["messages"]
    return {"agent": agent, "message_ids": [m["message_id"] for m in received]}


def _subscription(admin: httpx.Client) -> str:
    return ok(call(admin, "agora.messaging.subscribe", agent=_agent(admin), topics=["x.*"]))["subscription_id"]


def _task(admin: httpx.Client, agent: str | None = None) -> str:
    return ok(call(admin, "agora.task.assign", task_type="review", assignee=agent or _agent(admin)))["task_id"]


def _agent_with_task(admin: httpx.Client) -> str:
    agent = _agent(admin)
    _task(admin, agent)
    return agent


def _conversation(admin: httpx.Client) -> str:
    """A conversation of the admin's tenant: a message to an agent and a task for it, sharing a conversation id."""
    agent, conversation = _agent(admin), unique("talk")
    ok(call(admin, "agora.messaging.send", to_agent=agent, content={"text": "shall we?"}, correlation={"conversation_id": conversation}))
    ok(call(admin, "agora.task.assign", task_type="review", assignee=agent, payload={"text": "review it"}, conversation_id=conversation))
    return conversation


def _claimed(admin: httpx.Client) -> dict[str, Any]:
    """A task claimed by its agent: the agent, the task id and the lease token."""
    agent = _agent(admin)
    task_id = _task(admin, agent)
    lease = ok(call(admin, "agora.task.claim", agent=agent))["lease"]
    return {"agent": agent, "task_id": task_id, "lease_token": lease["token"]}


def _a2a_turn(admin: httpx.Client) -> dict[str, Any]:
    """An A2A message sent to an agent's public front, and the turn (an a2a.message task) that agent claimed."""
    agent = ok(call(admin, "agora.agents.register", agent_name=unique(), a2a={"access": "public"}))["agent_id"]
    send = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
        "message": {"messageId": unique("m"), "role": "ROLE_USER", "parts": [{"text": "review this"}]},
        "configuration": {"returnImmediately": True}}}  # fmt: skip
    ok(admin.post(f"/a2a/agents/{agent}", json=send, headers={"A2A-Version": "1.0"}))
    claimed = ok(call(admin, "agora.task.claim", agent=agent, task_types=["a2a.message"]))
    return {"task_id": claimed["task"]["task_id"], "lease_token": claimed["lease"]["token"]}


def _workflow(admin: httpx.Client, *steps: dict[str, Any]) -> str:
    """A running workflow whose first step waits (an approval, or a task for an agent that is not there)."""
    steps = steps or ({"name": "review", "agent": unique("absent")},)
    return ok(call(admin, "agora.workflow.create", workflow_name="example", steps=list(steps)))["workflow_id"]


def _definition(admin: httpx.Client) -> str:
    name = unique("etl")
    ok(call(admin, "agora.workflow.define", workflow_name=name, steps=[{"name": "extract", "agent": unique("x"), "input": {"day": "${input.day}"}}]))
    return name


def _schedule(admin: httpx.Client, **fields: Any) -> str:
    """A schedule of the admin's tenant: a message to one of its agents each Monday at 09:00 in Berlin."""
    action = {"message": {"to_agent": _agent(admin), "content": {"week_of": "{{tick}}"}}}
    made = ok(call(admin, "agora.schedules.create", name=unique("weekly"), trigger="0 9 * * 1", timezone="Europe/Berlin", action=action, **fields))
    return str(made["name"])


def _failed_task(admin: httpx.Client) -> str:
    claimed = _claimed(admin)
    ok(call(admin, "agora.task.update", task_id=claimed["task_id"], lease_token=claimed["lease_token"], status="failed"))
    return claimed["task_id"]


def _stdio_server() -> dict[str, Any]:
    """Registration of the fixture MCP server over stdio (the hub starts it)."""
    return {"name": unique("mcp").replace("-", ""), "command": sys.executable, "args": [str(Path(__file__).parent / "mcp_upstream.py"), "--stdio"]}


def _mcp_server(admin: httpx.Client) -> str:
    return ok(call(admin, "agora.mcp_servers.register", **_stdio_server()))["name"]


def _listed(admin: httpx.Client) -> str:
    """A listing, and a node to run it on: one that runs nothing (the test speaks for it; the admin may)."""
    ok(call(admin, "agora.hosting.register_node", name="catalog-node", capacity_cpu=1000, capacity_memory_mb=10_000_000))
    return ok(call(admin, "agora.marketplace.publish", **_listing()))["listing_id"]


def _metered(admin: httpx.Client) -> tuple[httpx.Client, dict[str, Any]]:
    """A running instance of a listing priced per token, as its own agent (with the key its node would give it), and
    a unit report."""
    pricing = {"model": "per_unit", "price": "0.001", "units": {"input_tokens": {"price": "0.003", "per": 1000, "max_per_call": 100_000}}}
    _listed(admin)
    listing = ok(call(admin, "agora.marketplace.publish", **_listing(), pricing=pricing))["listing_id"]
    instance_id = ok(call(admin, "agora.marketplace.create_instance", agent_id=listing))["instance_id"]
    ok(call(admin, "agora.hosting.report", instance_id=instance_id, status="running"))
    token = ok(call(admin, "agora.hosting.credentials", instance_id=instance_id))["agent_token"]
    agent = httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return agent, {"report_id": unique("report"), "units": {"input_tokens": 1200}, "task_id": None}


def _instance(admin: httpx.Client, state: str | None = None) -> str:
    instance_id = ok(call(admin, "agora.marketplace.create_instance", agent_id=_listed(admin)))["instance_id"]
    if state is not None:
        ok(call(admin, "agora.hosting.report", instance_id=instance_id, status=state))
    return instance_id


def _listing() -> dict[str, Any]:
    return {"agent_name": unique("lst"), "repository": {"url": "https://example.com/agent.git"}, "build_config": {"start_command": "python agent.py"}}


def _paused(admin: httpx.Client) -> str:
    instance_id = _instance(admin, "running")
    ok(call(admin, "agora.marketplace.pause_instance", instance_id=instance_id))
    return instance_id


def _served(admin: httpx.Client, instance_id: str | None = None) -> dict[str, Any]:
    """A running instance whose agent (played by a thread with the agent's key) completes the next task it gets."""
    instance_id = instance_id or _instance(admin, "running")
    token = ok(call(admin, "agora.hosting.credentials", instance_id=instance_id))["agent_token"]

    def serve() -> None:
        with httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {token}"}, timeout=30) as agent:
            claimed = ok(call(agent, "agora.task.claim", wait=20))
            ok(call(agent, "agora.task.update", task_id=claimed["task"]["task_id"], lease_token=claimed["lease"]["token"], status="completed", result={"sum": 3}))

    threading.Thread(target=serve, daemon=True).start()
    return {"instance_id": instance_id, "endpoint": "add", "parameters": {"numbers": [1, 2]}, "timeout": 20}


def _buyer(admin: httpx.Client) -> tuple[httpx.Client, str]:
    """A tenant's client that ran one of the admin's listings and had an execution completed (a verified buyer), and
    the listing."""
    key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("buyer")))["key"]
    buyer = httpx.Client(base_url=str(admin.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=30)
    listing = _listed(admin)
    instance_id = ok(call(buyer, "agora.marketplace.create_instance", agent_id=listing))["instance_id"]
    ok(call(admin, "agora.hosting.report", instance_id=instance_id, status="running"))
    execution = _served(admin, instance_id)
    assert ok(call(buyer, "agora.marketplace.execute", **execution))["status"] == "completed"
    return buyer, listing


def _review(admin: httpx.Client) -> tuple[httpx.Client, str, str]:
    """A verified buyer's client, the admin's listing it ran and its published review of it."""
    buyer, listing = _buyer(admin)
    return buyer, listing, ok(call(buyer, "agora.reviews.write", listing=listing, rating=4))["review_id"]


def _as_buyer(make: Callable[[str], dict[str, Any]]) -> Callable[[httpx.Client], tuple[httpx.Client, dict[str, Any]]]:
    """An example the verified buyer that wrote a review calls: ``make(review_id)`` gives its input."""

    def example(admin: httpx.Client) -> tuple[httpx.Client, dict[str, Any]]:
        buyer, _listing, review_id = _review(admin)
        return buyer, make(review_id)

    return example


def _tenant(admin: httpx.Client) -> str:
    name = unique("payer")
    ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=name))
    return name


def _key(admin: httpx.Client) -> str:
    return ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("t")))["info"]["key_id"]


def _person(admin: httpx.Client, tenant: str = "default") -> str:
    """A person with the viewer role in ``tenant``: their email."""
    email = f"{unique('person')}@example.com"
    ok(call(admin, "agora.users.create", email=email, role="viewer", tenant=tenant))
    return email


EXAMPLES: dict[str, Example] = {
    "agora.conversations.list": lambda a: {"tenant": "default", "limit": 5} if _conversation(a) else {},
    "agora.conversations.get": lambda a: {"conversation_id": _conversation(a), "tenant": "default", "limit": 10},
    "agora.conversations.send": lambda a: {"conversation_id": _conversation(a), "tenant": "default", "text": "and then?", "send_as": "message"},
    "agora.agents.register": lambda a: {
        "agent_name": unique(),
        "capabilities": ["docs"],
        "service_tier": "premium",
        "description": "writes docs",
        "metadata": {"team": "x"},
        "manifest": {
            "endpoint": "http://127.0.0.1:9/agent",
            "build_config": {"type": "python", "start_command": "python agent.py", "env_vars": {"A": "1"}},
            "host_requirements": {"min_memory_mb": 256, "min_cpu_cores": 0.5},
            "pricing": {"type": "hybrid", "price": "0.01", "base_fee_per_hour": "1.50", "currency": "USD"},
            "max_instances": 3,
        },
    },
    "agora.agents.get": lambda a: {"agent": _agent(a)},
    "agora.agents.list": lambda a: {"limit": 5},
    "agora.agents.heartbeat": lambda a: {"agent": _agent(a), "status": "busy", "note": "working"},
    "agora.agents.update": lambda a: {"agent": _agent(a), "description": "new", "capabilities": ["a", "b"]},
    "agora.agents.deregister": lambda a: {"agent": _agent(a)},
    "agora.agents.register_capability": lambda a: {"agent_id": unique("v4"), "capability_type": "analysis", "proficiency": 70},
    "agora.messaging.send": lambda a: {
        "to_agent": _agent(a),
        "content": {"text": "hello"},
        "message_type": "introduction",
        "performative": "inform",
        "intent": "greet",
        "priority": "high",
        "correlation": {"conversation_id": "c-1"},
        "expected": {"type": "ack", "timeout_ms": 5000},
        "context": {"lang": "en"},
        "idempotency_key": unique("idem"),
        "ttl": 3600,
    },
    "agora.messaging.send_batch": lambda a: {
        "messages": [{"to_agent": "broadcast", "content": "all"}, {"topic": "builds.ok", "content": {"n": 1}, "priority": 4}]
    },
    "agora.messaging.publish": lambda a: {"topic": "builds.eu.failed", "content": "red", "performative": "failure"},
    "agora.messaging.receive": lambda a: {"agent": _agent(a), "limit": 5, "wait": 0, "visibility_timeout": 10},
    "agora.messaging.ack": _delivered,
    "agora.messaging.search": lambda a: {
        "from_agent": "system", "kind": "direct", "message_type": "introduction", "performative": "inform",
        "since": "2026-01-01T00:00:00Z", "until": "2999-01-01T00:00:00Z", "text": "hello", "tenant": "default", "limit": 10,
    },  # fmt: skip
    "agora.messaging.subscribe": lambda a: {"agent": _agent(a), "topics": ["builds.*"], "event_types": ["task_assigned"]},
    "agora.messaging.unsubscribe": lambda a: {"subscription_id": _subscription(a)},
    "agora.task.assign": lambda a: {
        "task_type": "review_document",
        "required_capabilities": ["example"],
        "payload": {"doc": "guide.md"},
        "deadline": "2999-01-01T00:00:00Z",
        "priority": "high",
        "idempotency_key": unique("idem"),
        "max_attempts": 2,
        "depends_on": [_task(a)],
        "workflow_id": "wf_0000000000000001",
    },
    "agora.task.claim": lambda a: {"agent": _agent_with_task(a), "task_types": ["review"], "wait": 0, "lease_seconds": 10},
    "agora.task.assign_batch": lambda a: {
        "tasks": [
            {"task_type": "review_document", "required_capabilities": ["proofreading"], "payload": {"doc": "a.md"}, "priority": "high"},
            {"task_type": "review_document", "assignee": _agent(a), "payload": {"doc": "b.md"}, "idempotency_key": unique("idem")},
        ]
    },
    "agora.task.claim_batch": lambda a: {"agent": _agent_with_task(a), "task_types": ["review"], "wait": 0, "lease_seconds": 10, "max_tasks": 5},
    "agora.workflow.create": lambda a: {
        "workflow_name": "data_pipeline", "input": {"source": "db1"},
        "steps": [{"name": "extract", "agent": unique("extractor"), "input": {"source": "${input.source}"}},
                  {"name": "load", "agent": unique("loader"), "input": {"rows": "${steps.extract.result.rows}"}}],
    },  # fmt: skip
    "agora.workflow.define": lambda a: {"workflow_name": unique("etl"), "steps": [{"name": "extract", "agent": unique("x")}], "description": "nightly"},
    "agora.workflow.run": lambda a: {"workflow_name": _definition(a), "input": {"day": "monday"}},
    "agora.schedules.create": lambda a: {
        "name": unique("nightly"), "trigger": "@daily", "timezone": "America/New_York", "overlap": "queue", "missed": "catch_up",
        "catch_up_max": 3, "jitter_seconds": 30, "max_runs": 100, "description": "the nightly report",
        "action": {"task": {"task_type": "report", "required_capabilities": ["reports"], "payload": {"day": "{{tick}}"}, "deadline_seconds": 3600}},
    },
    "agora.schedules.get": lambda a: {"schedule": _schedule(a)},
    "agora.schedules.list": lambda a: {"status": "active", "limit": 5},
    "agora.schedules.update": lambda a: {"schedule": _schedule(a), "trigger": "every 15m", "timezone": "UTC", "jitter_seconds": 5},
    "agora.schedules.pause": lambda a: {"schedule": _schedule(a), "note": "holidays"},
    "agora.schedules.resume": lambda a: {"schedule": _schedule(a, paused=True)},
    "agora.schedules.delete": lambda a: {"schedule": _schedule(a)},
    "agora.schedules.run_now": lambda a: {"schedule": _schedule(a)},
    "agora.schedules.history": lambda a: {"schedule": _schedule(a), "limit": 10},
    "agora.workflow.status": lambda a: {"workflow_id": _workflow(a), "mermaid": True},
    "agora.workflow.list": lambda a: {"status": "running", "limit": 5},
    "agora.workflow.modify": lambda a: {"workflow_id": _workflow(a), "add": [{"name": "report", "agent": unique("writer")}]},
    "agora.workflow.cancel": lambda a: {"workflow_id": _workflow(a), "reason": "catalog test"},
    "agora.workflow.signal": lambda a: {"workflow_id": _workflow(a, {"name": "ok", "kind": "approval"}), "step": "ok", "decision": "approve", "data": {"by": "me"}},
    "agora.a2a.update": lambda a: {**_a2a_turn(a), "state": "completed", "message": {"parts": [{"text": "looks good"}]}},
    "agora.task.heartbeat": lambda a: {**_claimed(a), "progress": 40, "notes": "halfway", "lease_seconds": 20},
    "agora.task.emit": lambda a: {**_claimed(a), "chunks": [{"text": "Once upon "}, {"text": "a time"}, {"data": {"tokens": 4}}]},
    "agora.task.watch": lambda a: (lambda claimed: (
        ok(call(a, "agora.task.emit", **claimed, chunks=[{"text": "partial"}])), {"task_id": claimed["task_id"], "after": 0, "limit": 10, "wait": 0.1},
    )[1])(_claimed(a)),
    "agora.task.update": lambda a: {
        **{k: v for k, v in _claimed(a).items() if k != "agent"},
        "status": "completed",
        "result": {"verdict": "ok"},
        "notes": "done",
    },
    "agora.task.update_batch": lambda a: {
        "updates": [
            {**{k: v for k, v in _claimed(a).items() if k != "agent"}, "status": "completed", "result": {"verdict": "ok"}},
            {**{k: v for k, v in _claimed(a).items() if k != "agent"}, "progress": 50, "notes": "halfway"},
        ]
    },
    "agora.task.cancel": lambda a: {"task_id": _task(a), "reason": "not needed"},
    "agora.task.requeue": lambda a: {"task_id": _failed_task(a), "reset_attempts": True},
    "agora.task.reassign": lambda a: {"task_id": _task(a), "assignee": _agent(a), "reason": "rebalancing"},
    "agora.task.set_priority": lambda a: {"task_id": _task(a), "priority": "urgent"},
    "agora.task.requeue_dead_letter": lambda a: {"task_type": unique("dead"), "tenant": "default", "limit": 10},
    "agora.task.get": lambda a: {"task_id": _task(a)},
    "agora.task.list": lambda a: {"status": "pending", "sort": "priority", "limit": 5, "offset": 0},
    "agora.task.history": lambda a: {"task_id": _task(a)},
    "agora.task.stats": lambda a: {"task_type": "review"},
    "agora.query.agents": lambda a: {"capabilities": ["example"], "status": "active", "limit": 10},
    "agora.query.services": lambda a: {"category": "agents", "version": ">=1.0,<2"},
    "agora.query.marketplace": lambda a: {},
    "agora.query.activity": lambda a: {"minutes": 60, "tenant": "default"},
    "agora.discovery.list": lambda a: {"category": "query", "status": "active", "version": ">=1.0,<2", "text": "agents"},
    "agora.discovery.schema": lambda a: {"name": "agora.agents.register", "version": "1.0.0"},
    "agora.tools.search": lambda a: {"text": "claim task"},
    "agora.tools.call": lambda a: {"name": "agora.query.marketplace", "arguments": {}},
    "agora.tools.start": lambda a: {"name": "agora.messaging.receive", "arguments": {"agent": _agent(a), "wait": 1}},
    "agora.marketplace.publish": lambda a: _listing(),
    "agora.marketplace.discover": lambda a: {"category": "general", "text": "lst", "limit": 5},
    "agora.marketplace.get_listing": lambda a: {"listing": _listed(a)},
    "agora.marketplace.search": lambda a: {"q": "catalog example under a cent a request", "kinds": ["listing", "agent", "service"], "limit": 3},
    "agora.marketplace.chat": lambda a: {"message": "how many general listings are there?"},
    "agora.marketplace.stats": lambda a: {"category": "general"},
    "agora.marketplace.unlist": lambda a: {"listing": ok(call(a, "agora.marketplace.publish", **_listing()))["listing_id"]},
    "agora.marketplace.create_instance": lambda a: {"agent_id": _listed(a), "instance_config": {"memory_limit": 256, "env": {"MODE": "test"}}},
    "agora.marketplace.deploy": lambda a: {"agent_id": _listed(a), "reply_to": _agent(a)},
    "agora.marketplace.list_instances": lambda a: {"status": "starting", "limit": 5},
    "agora.marketplace.get_instance": lambda a: {"instance_id": _instance(a)},
    "agora.marketplace.pause_instance": lambda a: {"instance_id": _instance(a, "running")},
    "agora.marketplace.resume_instance": lambda a: {"instance_id": _paused(a)},
    "agora.marketplace.terminate_instance": lambda a: {"instance_id": _instance(a, "failed"), "grace_seconds": 1},
    "agora.marketplace.execute": lambda a: _served(a),
    "agora.marketplace.dashboard": lambda a: {},
    "agora.billing.invoice": lambda a: {"month": "2026-11"},
    "agora.billing.usage": lambda a: {"months": 3, "until": "2026-11"},
    "agora.billing.report_usage": _metered,
    "agora.billing.credits": lambda a: {"customer": "default", "limit": 5},
    "agora.billing.credit_policy": lambda a: {"when_exhausted": "invoice"},
    "agora.billing.set_budget": lambda a: {"monthly_limit": "250.00", "currency": "USD", "instance_cap": "40", "thresholds": [80, 50, 100], "action": "refuse_new", "notify_agent": _agent(a), "customer": "default"},
    "agora.billing.budget": lambda a: {"customer": "default"},
    "agora.billing.grant_credits": lambda a: {"customer": _tenant(a), "amount": "12.50", "currency": "EUR", "idempotency_key": unique("grant"), "kind": "grant", "note": "welcome", "expires_at": "2099-01-01T00:00:00Z"},
    "agora.hosting.register_node": lambda a: {"name": unique("node"), "region": "eu", "capacity_cpu": 2, "capacity_memory_mb": 2048},
    "agora.hosting.list_nodes": lambda a: {},
    "agora.hosting.assigned": lambda a: {"node": "catalog-node"} if _listed(a) else {},
    "agora.hosting.credentials": lambda a: {"instance_id": _instance(a)},
    "agora.hosting.report": lambda a: {"instance_id": _instance(a), "status": "running", "pid": 4242, "cpu_percent": 1.5, "memory_mb": 40.2, "processes": 1},
    "agora.reviews.write": lambda a: (lambda b: (b[0], {"listing": b[1], "rating": 5, "title": "Adds up", "text": "fast\nand right", "listing_version": 1}))(_buyer(a)),
    "agora.reviews.edit": _as_buyer(lambda review: {"review_id": review, "rating": 5, "text": "even better"}),
    "agora.reviews.withdraw": _as_buyer(lambda review: {"review_id": review}),
    "agora.reviews.list": lambda a: {"listing": _review(a)[1], "limit": 5},
    "agora.reviews.respond": lambda a: {"review_id": _review(a)[2], "text": "Thank you"},
    "agora.reviews.hide": lambda a: {"review_id": _review(a)[2], "reason": "spam", "hidden": True},
    "agora.mcp_servers.register": lambda a: _stdio_server(),
    "agora.mcp_servers.list": lambda a: {},
    "agora.mcp_servers.remove": lambda a: {"name": _mcp_server(a)},
    "agora.admin.health": lambda a: {"component": "database"},
    "agora.admin.override": lambda a: {"target_id": _agent(a), "action": "pause", "reason": "catalog test"},
    "agora.admin.audit": lambda a: {"limit": 5},
    "agora.admin.keys.create": lambda a: {"kind": "customer", "name": "ci", "tenant": unique("t"), "scopes": ["agents:read"]},
    "agora.admin.keys.list": lambda a: {"limit": 5},
    "agora.admin.keys.revoke": lambda a: {"key_id": _key(a)},
    "agora.users.me": lambda a: {},
    "agora.users.new_second_factor": lambda a: {},
    "agora.users.set_second_factor": lambda a: {"user": _person(a)},
    "agora.users.create": lambda a: {"email": f"{unique('p')}@example.com", "role": "operator", "tenant": unique("t"), "link_hours": 24},
    "agora.users.list": lambda a: {"tenant": "default", "limit": 5},
    "agora.users.remove": lambda a: {"user": _person(a)},
    "agora.memberships.set": lambda a: {"user": _person(a), "role": "developer", "tenant": "default"},
    "agora.memberships.remove": lambda a: {"user": _person(a), "tenant": "default"},
}


@pytest.fixture(scope="module")
def tools(sqlite_hub) -> list[dict[str, Any]]:
    with sqlite_hub.client() as c:
        # The built-in catalog; tools imported from MCP servers other tests registered (ext.*) are not its own.
        return [t for t in ok(call(c, "agora.discovery.list"))["services"] if t["category"] != "ext"]


def test_every_tool_has_an_example(tools):
    assert sorted(t["name"] for t in tools) == sorted(EXAMPLES)


def test_each_tool_schema_validates_its_real_input_and_the_call_succeeds(hub, admin, tools):
    for tool in tools:
        schema = ok(call(admin, "agora.discovery.schema", name=tool["name"]))
        assert schema["version"] == tool["version"]
        assert schema["http"]["path"] == "/" + tool["name"].replace(".", "/")
        example = EXAMPLES[tool["name"]](admin)
        caller, args = example if isinstance(example, tuple) else (admin, example)
        jsonschema.validate(args, schema["input_schema"])
        result = ok(call(caller, tool["name"], **args))
        jsonschema.validate(result, schema["output_schema"])
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**args, "no_such_field": 1}, schema["input_schema"])


def test_read_only_tools_answer_get_and_others_refuse_it(admin, tools):
    for tool in tools:
        response = admin.get("/" + tool["name"].replace(".", "/"))
        if tool["read_only"]:
            assert response.status_code in (200, 422), (tool["name"], response.text)
        else:
            assert response.status_code == 405, (tool["name"], response.text)
            assert response.json()["error"]["code"] == "method_not_allowed"


def test_openapi_describes_every_tool_with_its_models(admin, tools):
    spec = ok(admin.get("/openapi.json"))
    schemas = spec["components"]["schemas"]
    for tool in tools:
        path = spec["paths"]["/" + tool["name"].replace(".", "/")]
        post = path["post"]
        assert post["summary"] == tool["name"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[1] in schemas
        assert "200" in post["responses"] and "422" in post["responses"]
        assert ("get" in path) == tool["read_only"]
    assert spec["paths"]["/agents/{agent}"]["get"]["parameters"][0]["name"] == "agent"


def test_stored_services_table_matches_the_catalog(admin, tools):
    stored = ok(call(admin, "agora.query.services"))["services"]
    assert {(s["service_name"], s["version"], s["status"]) for s in stored} == {
        (t["name"], t["version"], t["status"]) for t in tools
    }
    assert all(s["service_id"].startswith("svc_") and "input" in s["schema"] for s in stored)
    deprecated = ok(call(admin, "agora.query.services", status="deprecated"))["services"]
    assert [s["service_name"] for s in deprecated] == ["agora.agents.register_capability"]
    assert ok(call(admin, "agora.query.services", version="<1.0"))["count"] == 1
    assert ok(call(admin, "agora.query.services", category="admin"))["count"] == 6


def test_discovery_filters(admin, tools):
    assert ok(call(admin, "agora.discovery.list", category="agents"))["count"] == 7
    assert ok(call(admin, "agora.discovery.list", status="deprecated"))["services"][0]["replacement"] == "agora.agents.register@1.0.0"
    in_range = ok(call(admin, "agora.discovery.list", version=">=1.0,<2"))["services"]
    assert len([t for t in in_range if t["category"] != "ext"]) == len(tools) - 1  # ext.*: registered MCP servers' tools
    audit = {t["name"] for t in ok(call(admin, "agora.discovery.list", text="audit log"))["services"]}
    assert audit == {"agora.admin.audit", "agora.admin.override"}
    seed_path = ok(admin.get("/discovery/schema/agora.query.agents"))
    assert seed_path["name"] == "agora.query.agents"
    missing = call(admin, "agora.discovery.schema", name="agora.nope.nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_version = call(admin, "agora.discovery.schema", name="agora.query.agents", version=">=2")
    assert wrong_version.status_code == 404


# What a schema node may say that does not narrow the value: a node of these alone accepts any value.
_ANNOTATIONS = {"description", "title", "default", "examples", "deprecated", "readOnly", "writeOnly"}


def _schema_nodes(node: Any, defs: dict[str, Any], path: str = "", seen: tuple[str, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every node of a JSON schema with its path, each definition followed once along a path."""
    if not isinstance(node, dict):
        return
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name not in seen:
            yield from _schema_nodes(defs[name], defs, path, (*seen, name))
        return
    yield path, node
    for union in ("anyOf", "oneOf", "allOf"):
        for i, branch in enumerate(node.get(union, [])):
            yield from _schema_nodes(branch, defs, f"{path}|{union}[{i}]", seen)
    for name, sub in node.get("properties", {}).items():
        yield from _schema_nodes(sub, defs, f"{path}.{name}", seen)
    for key in ("items", "additionalProperties"):
        yield from _schema_nodes(node.get(key), defs, f"{path}.<{key}>", seen)
    for sub in node.get("patternProperties", {}).values():
        yield from _schema_nodes(sub, defs, f"{path}.<pattern>", seen)


def _loose_nodes(schema: dict[str, Any]) -> list[str]:
    """Where a JSON schema accepts any value (an empty node) or any object (no properties, no pattern, no schema
    for the values)."""
    loose = []
    for path, node in _schema_nodes(schema, schema.get("$defs", {})):
        if not set(node) - _ANNOTATIONS:
            loose.append(path or "(the whole input)")
        elif node.get("type") == "object" and not ({"properties", "patternProperties"} & set(node)) and node.get("additionalProperties", True) is True:
            loose.append(f"{path} (any object)")
    return loose


def test_no_tool_schema_accepts_any_value_unsaid():
    """Every parameter and result field of every tool has a concrete JSON schema (what MCP clients and LLMs read): a
    value that may be any JSON says which types, an open object says what its values are."""
    from agora.catalog.registry import build_catalog

    loose = {}
    for tool in build_catalog():
        for kind, schema in (("input", tool.input_schema()), ("output", tool.output_schema())):
            found = _loose_nodes(schema)
            if found:
                loose[f"{tool.name} {kind}"] = found
    assert loose == {}


def test_every_integer_a_tool_takes_has_an_upper_bound():
    """An integer input with no maximum reached PostgreSQL's integer columns (int4) and failed there: 500s that
    schemathesis runs found (a workflow's version, an instance's pid and process count). Bounded, a value past the
    bound is a 422 naming the field."""
    from agora.catalog.registry import build_catalog

    unbounded = {}
    for tool in build_catalog():
        schema = tool.input_schema()
        found = [path for path, node in _schema_nodes(schema, schema.get("$defs", {})) if node.get("type") == "integer" and not {"maximum", "exclusiveMaximum"} & set(node)]
        if found:
            unbounded[tool.name] = found
    assert unbounded == {}


@pytest.mark.parametrize("containers", [1, 63, 64, 65, 66, 200])
def test_the_quick_nesting_check_refuses_exactly_what_the_walk_refuses(containers: int):
    """Input with fewer brackets than the depth allowed skips the walk; at the limit and past it the walk decides."""
    from agora.catalog.registry import MAX_INPUT_DEPTH, _check_values, _refuse_first_flaw
    from agora_sdk.errors import InvalidArgument

    def verdict(check: Callable[[str, Any], None], value: Any) -> bool:
        try:
            check("agora.test.tool", value)
        except InvalidArgument:
            return False
        return True

    value: Any = {"leaf": "[{"}  # brackets inside text only count against the quick check
    for _ in range(containers - 1):
        value = {"x": value}
    assert verdict(_check_values, value) == verdict(_refuse_first_flaw, value) == (containers <= MAX_INPUT_DEPTH)
