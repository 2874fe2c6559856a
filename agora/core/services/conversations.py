"""agora.conversations.*: a tenant's conversations (the messages and tasks sharing a ``conversation_id``; an A2A
turn's is its contextId), listed by last activity, read as a thread with each task's output, and continued.

Continuing sends the next turn to the conversation's agent the way it last received one (a message, or a task of
the same type) with the earlier turns it needs, as A2A sends a task's history: ``context.history`` of a message,
``payload.history`` of a task, each entry ``{role, sender, text, at}`` with ``role`` 'agent' for the agent's own
words and 'user' for everyone else's. An agent's key sees only the conversations it takes part in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agora.core.auth import PrincipalKind, Scope
from agora.core.context import CallContext
from agora.core.services import messaging, tasks
from agora.core.services.acting import tenant_in_scope
from agora.store.ops import agents as agent_ops
from agora.store.ops import conversations as ops
from agora.store.ops.pagination import decode_position, encode_position
from agora_sdk.errors import InvalidArgument, NotFound
from agora_sdk.wire import conversations as w
from agora_sdk.wire.messaging import SendMessage
from agora_sdk.wire.tasks import AssignTask

OUTPUT_CHARS = 20_000  # of a task's output text shown in a turn
HISTORY_CHARS = 4_000  # of each earlier turn sent along when a conversation is continued
TOOL = "agora.conversations.send"


async def list_conversations(ctx: CallContext, req: w.ListConversations) -> w.ConversationList:
    tenant_id = await tenant_in_scope(ctx, req.tenant)
    position = decode_position(req.cursor, 2, any_key=True)
    before = (_instant(position[0]), position[1]) if position else None

    def op(conn: Connection) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[dict[str, Any]]]]:
        among = _own(ctx)
        if req.agent is not None:
            among.append(agent_ops.resolve(conn, tenant_id, req.agent)["agent_id"])
        rows = ops.page(conn, tenant_id, among, before, req.limit)
        return rows, ops.participants(conn, [(r["tenant_id"], r["conversation_id"]) for r in rows[: req.limit]])

    rows, agents_of = await ctx.store.read(op)
    shown = rows[: req.limit]
    cursor = encode_position((shown[-1]["last_activity_at"].isoformat(), shown[-1]["conversation_id"])) if len(rows) > req.limit else None
    return w.ConversationList(conversations=[_summary(r, agents_of) for r in shown], next_cursor=cursor)


def _instant(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"}) from None


def _own(ctx: CallContext) -> list[str]:
    """An agent's key sees the conversations it took part in alone."""
    p = ctx.principal
    return [p.agent_id] if p.kind is PrincipalKind.agent and p.agent_id else []


def _summary(row: dict[str, Any], agents_of: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "conversation_id": row["conversation_id"], "tenant_id": row["tenant_id"], "summary": row["summary"],
        "turn_count": row["turns"], "participants": agents_of.get((row["tenant_id"], row["conversation_id"]), []),
        "started_at": row["started_at"], "last_activity_at": row["last_activity_at"],
    }  # fmt: skip


async def _tenant(ctx: CallContext, ref: str | None) -> str:
    tenant_id = await tenant_in_scope(ctx, ref)
    if tenant_id is None:
        raise InvalidArgument("a conversation is a tenant's: name the tenant", details={"field": "tenant"})
    return tenant_id


def _read(conn: Connection, ctx: CallContext, tenant_id: str, conversation_id: str, limit: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The conversation with its participants, and its last ``limit`` turns; 404 if there is none the caller may see."""
    row = ops.get(conn, tenant_id, conversation_id)
    agents_of = ops.participants(conn, [(tenant_id, conversation_id)]) if row else {}
    taking_part = {a["agent_id"] for a in agents_of.get((tenant_id, conversation_id), [])}
    if row is None or not set(_own(ctx)) <= taking_part:
        raise NotFound(f"no conversation '{conversation_id}'", details={"conversation_id": conversation_id})
    return _summary(row, agents_of), ops.turns(conn, tenant_id, conversation_id, limit, OUTPUT_CHARS)


async def get(ctx: CallContext, req: w.GetConversation) -> w.Conversation:
    tenant_id = await _tenant(ctx, req.tenant)
    summary, turns = await ctx.store.read(lambda conn: _read(conn, ctx, tenant_id, req.conversation_id, req.limit + 1))
    earlier = len(turns) > req.limit
    return w.Conversation(**summary, turns=[_turn(t) for t in turns[-req.limit :]], has_earlier=earlier)


def _turn(t: dict[str, Any]) -> w.Turn:
    if t["kind"] == "message":
        return w.Turn(
            kind=w.TurnKind.message, id=t["message_id"], at=t["created_at"], from_agent=t["sender_id"], to_agent=t["recipient_id"],
            text=ops.words(t["content"]), content=t["content"], message_type=t["message_type"],
        )  # fmt: skip
    return w.Turn(
        kind=w.TurnKind.task, id=t["task_id"], at=t["created_at"], from_agent=t["created_by"], to_agent=t["claimed_by"] or t["assignee"],
        text=ops.words(t["payload"]), content=t["payload"], task_type=t["task_type"], status=t["status"], output=t["output"],
        result=t["result"], error=t["last_error"],
    )  # fmt: skip


async def send(ctx: CallContext, req: w.SendToConversation) -> w.Continued:
    tenant_id = await _tenant(ctx, req.tenant)
    p = ctx.principal

    def read(conn: Connection) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        _summary_row, turns = _read(conn, ctx, tenant_id, req.conversation_id, max(req.history, 50))
        ref = req.to_agent or _last_speaker(turns, p.agent_id)
        if ref is None:
            raise InvalidArgument("no agent spoke in this conversation yet: name one with to_agent", details={"field": "to_agent"})
        return agent_ops.resolve(conn, tenant_id, ref), turns

    agent, turns = await ctx.store.read(read)
    agent_id = agent["agent_id"]
    last_task = next((t for t in reversed(turns) if t["kind"] == "task" and agent_id in (t["assignee"], t["claimed_by"])), None)
    last_given = next((t for t in reversed(turns) if agent_id in (t.get("recipient_id"), t.get("assignee"), t.get("claimed_by"))), None)
    send_as = req.send_as or (w.SendAs.task if last_given is not None and last_given["kind"] == "task" else w.SendAs.message)
    history = _history(turns[-req.history :], agent_id)[-req.history :] if req.history else []
    said = req.content if req.content is not None else {"text": req.text}
    entries = [h.model_dump(mode="json") for h in history]
    if send_as is w.SendAs.message:
        last_message = next((t for t in reversed(turns) if t["kind"] == "message" and t["recipient_id"] == agent_id), None)
        receipt = await messaging.send(ctx, SendMessage(
            to_agent=agent_id, message_type=last_message["message_type"] if last_message else "text", content=said,
            correlation={"conversation_id": req.conversation_id}, context={"history": entries},
        ))  # fmt: skip
        return w.Continued(conversation_id=req.conversation_id, sent_as=send_as, to_agent=agent_id, message_id=receipt.message_id, history=history)
    if last_task is None:
        raise InvalidArgument(
            "no task of this conversation went to that agent: continue with send_as 'message'", details={"field": "send_as"}
        )
    p.require_scopes(frozenset({Scope.tasks_write.value}), TOOL)
    if p.tenant_id != tenant_id:
        raise InvalidArgument("an admin continues another tenant's conversation with a message", details={"field": "send_as"})
    assigned = await tasks.assign(ctx, AssignTask(
        task_type=last_task["task_type"], assignee=agent_id, payload={**said, "history": entries}, conversation_id=req.conversation_id,
    ))  # fmt: skip
    return w.Continued(conversation_id=req.conversation_id, sent_as=send_as, to_agent=agent_id, task_id=assigned.task_id, history=history)


def _last_speaker(turns: list[dict[str, Any]], caller: str | None) -> str | None:
    """The agent that took part last, other than the caller."""
    for t in reversed(turns):
        if t["kind"] == "message":
            candidates = [t["sender_id"], t["recipient_id"]]
        else:
            candidates = [t["claimed_by"], t["assignee"]]
        for ref in candidates:
            if ops.agent(ref) and ref != caller:
                return str(ref)
    return None


def _history(turns: list[dict[str, Any]], agent_id: str) -> list[w.HistoryEntry]:
    """The turns as ``agent_id`` receives them: a task as what it was asked and, once there is some, what it said."""
    entries: list[w.HistoryEntry] = []
    for t in turns:
        if t["kind"] == "message":
            entries.append(_entry(agent_id, t["sender_id"], t["content"], t["created_at"]))
            continue
        entries.append(_entry(agent_id, t["created_by"], {k: v for k, v in t["payload"].items() if k != "history"}, t["created_at"]))
        answer = t["output"] or (ops.words(t["result"]) if t["result"] is not None else "")
        if answer:
            entries.append(_entry(agent_id, t["claimed_by"] or t["assignee"] or "", answer, t["finished_at"] or t["created_at"]))
    return entries


def _entry(agent_id: str, sender: str, said: Any, at: datetime) -> w.HistoryEntry:
    role = "agent" if sender == agent_id else "user"
    return w.HistoryEntry(role=role, sender=sender, text=ops.words(said)[:HISTORY_CHARS], at=at)
