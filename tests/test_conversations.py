"""Conversations (issue 63): the messages, tasks and A2A turns of a tenant that share a conversation id (an A2A
contextId), listed by last activity with their agents and summary line, read as a thread with each task's output,
and continued — from the SDK's ``client.conversations.resume`` or the tool — with the agent receiving the earlier
turns as ``history``; an agent's key sees its own conversations alone, a viewer reads and an operator continues."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agora_sdk.client import AsyncAgoraClient

from .conftest import call, expect_error, new_tenant, ok, unique
from .hubproc import HubProcess


def _agents(admin: httpx.Client, tenant: httpx.Client | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    caller = tenant or admin
    return (
        ok(call(caller, "agora.agents.register", agent_name=unique("asker"), capabilities=["chat"], a2a={"access": "public"})),
        ok(call(caller, "agora.agents.register", agent_name=unique("writer"), capabilities=["chat"], a2a={"access": "public"})),
    )


def _said(client: httpx.Client, to: str, text: str, conversation: str) -> dict[str, Any]:
    return ok(call(client, "agora.messaging.send", to_agent=to, message_type="chat", content={"text": text}, correlation={"conversation_id": conversation}))


def test_a_conversation_gathers_its_messages_tasks_and_a2a_turns_as_a_thread(hub: HubProcess, admin: httpx.Client) -> None:
    asker, writer = _agents(admin)
    talk = unique("talk")
    with hub.client(asker["agent_token"]) as as_asker, hub.client(writer["agent_token"]) as as_writer:
        _said(as_asker, writer["agent_id"], "Could you draft the   release notes?", talk)
        _said(as_writer, asker["agent_id"], "Yes: for which version?", talk)
        task = ok(call(as_asker, "agora.task.assign", task_type="draft", assignee=writer["agent_id"], payload={"text": "v2.1"}, conversation_id=talk))
        claimed = ok(call(as_writer, "agora.task.claim", task_types=["draft"]))
        ok(call(as_writer, "agora.task.emit", task_id=task["task_id"], lease_token=claimed["lease"]["token"], chunks=[{"text": "## v2.1\n"}, {"text": "- faster"}]))
        # An A2A client's turn in the same context joins it.
        a2a = {"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {
            "message": {"messageId": unique("m"), "role": "ROLE_USER", "contextId": talk, "parts": [{"text": "and the date?"}]},
            "configuration": {"returnImmediately": True}}}  # fmt: skip
        ok(admin.post(f"/a2a/agents/{writer['agent_id']}", json=a2a, headers={"A2A-Version": "1.0"}))
        unrelated = unique("talk")
        _said(as_asker, writer["agent_id"], "something else", unrelated)

        listed = ok(call(admin, "agora.conversations.list", tenant="default", agent=writer["agent_id"], limit=2))
        assert [c["conversation_id"] for c in listed["conversations"]] == [unrelated, talk]  # the last active first
        mine = listed["conversations"][1]
        assert mine["summary"] == "Could you draft the release notes?" and mine["turn_count"] == 4
        assert {p["agent_name"] for p in mine["participants"]} == {asker["agent_name"], writer["agent_name"]}
        older = ok(call(admin, "agora.conversations.list", tenant="default", agent=writer["agent_id"], limit=1))
        assert older["conversations"][0]["conversation_id"] == unrelated and older["next_cursor"]
        rest = ok(call(admin, "agora.conversations.list", tenant="default", agent=writer["agent_id"], limit=1, cursor=older["next_cursor"]))
        assert rest["conversations"][0]["conversation_id"] == talk

        thread = ok(call(admin, "agora.conversations.get", conversation_id=talk, tenant="default"))
        kinds = [(t["kind"], t["text"]) for t in thread["turns"]]
        assert kinds[:3] == [("message", "Could you draft the   release notes?"), ("message", "Yes: for which version?"), ("task", "v2.1")]
        assert kinds[3] == ("task", "and the date?") and thread["turns"][3]["task_type"] == "a2a.message"
        assert thread["turns"][2]["output"] == "## v2.1\n- faster" and thread["turns"][2]["status"] == "in_progress"
        last = ok(call(admin, "agora.conversations.get", conversation_id=talk, tenant="default", limit=2))
        assert last["has_earlier"] and [t["text"] for t in last["turns"]] == ["v2.1", "and the date?"]

        # Each agent sees its own conversations alone (and none of another's by id).
        outsider = ok(call(admin, "agora.agents.register", agent_name=unique("outsider")))
        with hub.client(outsider["agent_token"]) as as_outsider:
            assert ok(call(as_outsider, "agora.conversations.list"))["conversations"] == []
            expect_error(call(as_outsider, "agora.conversations.get", conversation_id=talk), 404, "not_found")
        assert talk in {c["conversation_id"] for c in ok(call(as_asker, "agora.conversations.list"))["conversations"]}
    expect_error(call(admin, "agora.conversations.get", conversation_id=talk), 400, "invalid_argument")  # whose?
    expect_error(call(admin, "agora.conversations.get", conversation_id=unique("none"), tenant="default"), 404, "not_found")


async def test_a_resumed_conversation_reaches_the_agent_with_its_history(hub: HubProcess, admin: httpx.Client) -> None:
    """From the SDK, as a message (the agent's last turn was one) and as a task of the same type (its last was a
    task): the agent receives the earlier turns, its own words as role 'agent'."""
    tenant_admin = new_tenant(admin, hub)
    with tenant_admin:
        asker, writer = _agents(admin, tenant_admin)
        talk = unique("talk")
        with hub.client(asker["agent_token"]) as as_asker, hub.client(writer["agent_token"]) as as_writer:
            _said(as_asker, writer["agent_id"], "Hello", talk)
            _said(as_writer, asker["agent_id"], "Hi! What do you need?", talk)
            ok(call(as_writer, "agora.messaging.receive", limit=10))  # its inbox emptied: what comes next is the new turn
            key = tenant_admin.headers["authorization"].removeprefix("Bearer ")
            async with AsyncAgoraClient(hub.url, key) as client:
                session = await client.conversations.resume(talk)
                assert [t.text for t in session.turns] == ["Hello", "Hi! What do you need?"]
                sent = await session.send("A summary of yesterday, please", to_agent=writer["agent_name"])
                assert sent.sent_as.value == "message" and sent.to_agent == writer["agent_id"]
                inbox = ok(call(as_writer, "agora.messaging.receive", limit=10))["messages"]
                assert [m["content"] for m in inbox] == [{"text": "A summary of yesterday, please"}]
                assert inbox[0]["correlation"]["conversation_id"] == talk and inbox[0]["message_type"] == "chat"
                history = inbox[0]["context"]["history"]
                assert [(h["role"], h["text"]) for h in history] == [("user", "Hello"), ("agent", "Hi! What do you need?")]

                # The agent's last turn becomes a task: the next one is a task of its type, the answer in the history.
                task = ok(call(as_asker, "agora.task.assign", task_type="summarize", assignee=writer["agent_id"], payload={"text": "go"}, conversation_id=talk))
                claimed = ok(call(as_writer, "agora.task.claim", task_types=["summarize"]))
                ok(call(as_writer, "agora.task.emit", task_id=task["task_id"], lease_token=claimed["lease"]["token"], chunks=[{"text": "Yesterday: "}, {"text": "3 releases."}]))
                ok(call(as_writer, "agora.task.update", task_id=task["task_id"], status="completed", lease_token=claimed["lease"]["token"], result={"ok": True}))
                await session.refresh()
                follow = await session.send("Shorter", history=3)
                assert follow.sent_as.value == "task" and follow.task_id
                again = ok(call(as_writer, "agora.task.claim", task_types=["summarize"]))["task"]
                assert again["task_id"] == follow.task_id and again["conversation_id"] == talk and again["payload"]["text"] == "Shorter"
                assert [(h["role"], h["text"]) for h in again["payload"]["history"]] == [
                    ("user", "A summary of yesterday, please"), ("user", "go"), ("agent", "Yesterday: 3 releases."),
                ]  # fmt: skip
                assert len((await client.conversations.get(talk)).turns) == 5


def test_roles_and_tenants_hold_at_the_conversation(hub: HubProcess, admin: httpx.Client) -> None:
    """A viewer reads and may not continue; an operator continues; a stranger's conversation with another tenant's
    agent is the 404 of no agent."""
    tenant = unique("roles")
    keys = {role: ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, role=role))["key"] for role in ("viewer", "operator", "developer")}
    with hub.client(keys["developer"]) as developer, hub.client(keys["viewer"]) as viewer, hub.client(keys["operator"]) as operator:
        asker, writer = _agents(admin, developer)
        talk = unique("talk")
        with hub.client(asker["agent_token"]) as as_asker:
            _said(as_asker, writer["agent_id"], "ping", talk)
        assert ok(call(viewer, "agora.conversations.get", conversation_id=talk))["turn_count"] == 1
        refused = expect_error(call(viewer, "agora.conversations.send", conversation_id=talk, text="pong?"), 403, "permission_denied")
        assert "operator" in refused["details"]["roles_allowing"]
        # The last to speak answers: the asker (a message's sender, if it is an agent's).
        assert ok(call(operator, "agora.conversations.send", conversation_id=talk, text="pong?"))["to_agent"] == asker["agent_id"]
        expect_error(call(operator, "agora.conversations.send", conversation_id=talk), 422, "invalid_argument")  # nothing to say
        refused = expect_error(call(operator, "agora.conversations.send", conversation_id=talk, text="t", send_as="task"), 400, "invalid_argument")
        assert refused["details"]["field"] == "send_as"  # no task went to that agent in it
        assert ok(call(viewer, "agora.conversations.get", conversation_id=talk))["turn_count"] == 2  # the refusals changed nothing


def test_a_conversation_is_continued_with_its_own_tenant_s_agents_only(hub: HubProcess, admin: httpx.Client) -> None:
    foreign = ok(call(admin, "agora.agents.register", agent_name=unique("foreign")))
    with new_tenant(admin, hub) as stranger:
        asker, writer = _agents(admin, stranger)
        talk = unique("talk")
        with hub.client(asker["agent_token"]) as as_asker:
            _said(as_asker, writer["agent_id"], "hi", talk)
        for ref in (foreign["agent_id"], f"agent_{'0' * 24}"):
            refused = expect_error(call(stranger, "agora.conversations.send", conversation_id=talk, text="hi", to_agent=ref), 404, "not_found")
            assert refused["message"] == f"no agent '{ref}'"


@pytest.mark.parametrize("hub", ["sqlite"], indirect=True)
def test_bad_cursors_are_refused(hub: HubProcess, admin: httpx.Client) -> None:
    for cursor in ("not-a-cursor", "WyJ4IiwieSJd"):  # ["x","y"]: not a time
        expect_error(call(admin, "agora.conversations.list", tenant="default", cursor=cursor), 400, "invalid_argument")
