"""Messaging: send (direct, broadcast, topic), receive with a visibility timeout, ack, subscribe.

Every message is committed before the sender gets its receipt; the notifier then wakes receivers.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, or_, select

from agora.bus import Event
from agora.core.auth import PrincipalKind
from agora.core.context import CallContext, Hub
from agora.core.ids import is_id, new_id
from agora.core.services.acting import tenant_in_scope
from agora.core.wakeups import inbox_key
from agora.store.ops import agents as agent_ops
from agora.store.ops import messages as message_ops
from agora.store.ops import shared as shared_ops
from agora.store.ops.pagination import decode_cursor, encode_cursor
from agora.store.prepared import Prepared
from agora.store.schema import agents
from agora_sdk.errors import (
    InvalidArgument,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from agora_sdk.wire.common import iso_utc
from agora_sdk.wire.messaging import (
    PriorityLevel,
    BROADCAST,
    Ack,
    Acked,
    BatchReceipt,
    Inbox,
    Message,
    MessageReceipt,
    MessageSearch,
    PublishMessage,
    Receive,
    SearchMessages,
    SendBatch,
    SendMessage,
    StoredMessage,
    Subscribe,
    Subscription,
    Unsubscribe,
    Unsubscribed,
)

SYSTEM = "system"


def _sender(ctx: CallContext) -> str:
    """The sender comes from the token, never from the body: an agent sends as itself, other keys as 'system'."""
    return ctx.principal.agent_id or SYSTEM


def _recipients_statement(scoped: bool) -> Any:
    stmt = select(agents.c.agent_id, agents.c.agent_name, agents.c.tenant_id).where(
        or_(agents.c.agent_id.in_(bindparam("ids", expanding=True)), agents.c.agent_name.in_(bindparam("names", expanding=True)))
    )
    return stmt.where(agents.c.tenant_id == bindparam("tenant_id")) if scoped else stmt


def _recipient_statement(by_id: bool, scoped: bool) -> Prepared:
    """One recipient (the common send): an equality, which binds much faster than the batch's expanding IN lists."""
    stmt = select(agents.c.agent_id, agents.c.agent_name, agents.c.tenant_id)
    stmt = stmt.where((agents.c.agent_id if by_id else agents.c.agent_name) == bindparam("ref"))
    return Prepared(stmt.where(agents.c.tenant_id == bindparam("tenant_id")) if scoped else stmt)


_RECIPIENTS = {scoped: _recipients_statement(scoped) for scoped in (False, True)}
_RECIPIENT = {(by_id, scoped): _recipient_statement(by_id, scoped) for by_id in (False, True) for scoped in (False, True)}
# The common send, one direct message, whole in one statement on PostgreSQL. Not by name across tenants: a name
# unique only within a tenant could match several agents.
_DIRECT_SEND = {
    (by_id, scoped, answers): message_ops.direct_send(_RECIPIENT[by_id, scoped].stmt, answers)
    for by_id, scoped in ((True, False), (True, True), (False, True))
    for answers in (False, True)
}


def _resolve_recipients(conn: Connection, tenant_scope: str | None, refs: list[str]) -> dict[str, dict[str, Any]]:
    """Map each agent id or name to its agent (id and tenant); 404 naming the unknown ones."""
    if len(refs) == 1:
        params = {"ref": refs[0], "tenant_id": tenant_scope}
        rows = [tuple(r.values()) for r in _RECIPIENT[is_id(refs[0], "agent"), tenant_scope is not None].rows(conn, params)]
    else:
        params = {"ids": refs, "names": refs, "tenant_id": tenant_scope}
        rows = [tuple(r) for r in conn.execute(_RECIPIENTS[tenant_scope is not None], params).all()]
    found: dict[str, dict[str, Any]] = {}
    for agent_id, name, tenant_id in rows:
        found[agent_id] = found[name] = {"agent_id": agent_id, "tenant_id": tenant_id}
    missing = sorted(set(refs) - found.keys())
    if missing:
        raise _no_agent(missing)
    return found


def _no_agent(missing: list[str]) -> NotFound:
    return NotFound(f"no agent {', '.join(repr(m) for m in missing[:10])}", details={"agents": missing[:50]})


def draft(ctx: CallContext, msg: SendMessage, now: Any) -> dict[str, Any]:
    """The stored row of a message, but for its tenant and recipient (resolved in the sending transaction)."""
    size = len(orjson.dumps(msg.content))
    if size > ctx.hub.settings.max_message_bytes:
        raise PayloadTooLarge(
            f"message content is {size} bytes; the limit is {ctx.hub.settings.max_message_bytes}",
            details={"limit": ctx.hub.settings.max_message_bytes},
        )
    kind = "topic" if msg.topic else ("broadcast" if msg.to_agent == BROADCAST else "direct")
    correlation = msg.correlation.model_dump(exclude_none=True) if msg.correlation else None
    timeout_ms = msg.expected.timeout_ms if msg.expected else None
    awaits_reply = timeout_ms is not None and ctx.principal.agent_id is not None  # 'system' has no inbox to tell
    return {
        "message_id": new_id("msg"),
        "kind": kind,
        "sender_id": _sender(ctx),
        "topic": msg.topic,
        "message_type": msg.message_type,
        "performative": msg.performative.value if msg.performative else None,
        "intent": msg.intent,
        "priority": int(msg.priority),
        "content": msg.content,
        "correlation": correlation,
        "conversation_id": (correlation or {}).get("conversation_id"),
        "expected": msg.expected.model_dump(exclude_none=True) if msg.expected else None,
        "context": msg.context,
        "idempotency_key": msg.idempotency_key,
        "created_at": now,
        "expires_at": now + timedelta(seconds=msg.ttl) if msg.ttl else None,
        "reply_due_at": now + timedelta(milliseconds=timeout_ms) if awaits_reply else None,
    }


async def _send_all(ctx: CallContext, batch: list[SendMessage]) -> list[dict[str, Any]]:
    """Store the messages and wake their readers; their receipts, in order (validated by the caller: a batch's in
    one call, which costs a third less than one call per receipt)."""
    p = ctx.principal
    now = ctx.clock.now()
    drafts = [draft(ctx, msg, now) for msg in batch]
    refs = sorted({m.to_agent for m in batch if m.to_agent and m.to_agent != BROADCAST})
    scope = p.tenant_scope()
    if len(drafts) == 1 and _plain_direct(drafts[0]):
        answers = bool((drafts[0]["correlation"] or {}).get("reply_to"))
        if (key := (is_id(refs[0], "agent"), scope is not None, answers)) in _DIRECT_SEND:
            return [await _send_one(ctx, key, refs[0], scope, drafts[0], now)]

    rows, receipts = await ctx.store.write(send_in, ctx, batch, drafts, now)
    await announce_sent(ctx, rows, receipts)
    return [receipts[row["message_id"]] for row in rows]


def send_in(
    conn: Connection, ctx: CallContext, batch: list[SendMessage], drafts: list[dict[str, Any]], now: datetime
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Store the drafted messages inside the caller's transaction: (rows, receipts by message id). Recipients are
    resolved in it: one trip to the store, and none can vanish in between."""
    p = ctx.principal
    refs = sorted({m.to_agent for m in batch if m.to_agent and m.to_agent != BROADCAST})
    recipients = _resolve_recipients(conn, p.tenant_scope(), refs) if refs else {}
    rows, by_tenant = [], {}
    for msg, draft in zip(batch, drafts):
        target = recipients.get(msg.to_agent or "")
        row = {**draft, "tenant_id": target["tenant_id"] if target else p.tenant_id, "recipient_id": target and target["agent_id"]}
        rows.append(row)
        by_tenant.setdefault(row["tenant_id"], []).append(row)
    receipts: dict[str, dict[str, Any]] = {}
    for tenant_id, tenant_rows in by_tenant.items():
        for row, receipt in zip(tenant_rows, message_ops.send(conn, tenant_id, _sender(ctx), tenant_rows, now)):
            receipts[row["message_id"]] = receipt
    return rows, receipts


async def announce_sent(ctx: CallContext, rows: list[dict[str, Any]], receipts: dict[str, dict[str, Any]]) -> None:
    """After the commit: count the messages and wake their readers (one wake-up per recipient, tenant or topic is
    enough: woken readers read everything new from the store)."""
    for row in rows:
        ctx.hub.activity.count(row["tenant_id"], "messages")
    wakes = {}
    for row in rows:
        if receipts[row["message_id"]]["status"] == "queued":
            wakes.setdefault((row["kind"], row["tenant_id"], row["recipient_id"], row["topic"]), row)
    for row in wakes.values():
        await ctx.notifier.publish(_event(row))


def _plain_direct(draft: dict[str, Any]) -> bool:
    """A direct message without an idempotency key (nothing earlier to look up) outside a conversation (whose row
    ``send_in`` keeps)."""
    return draft["kind"] == "direct" and not draft["idempotency_key"] and not draft["conversation_id"]


async def _send_one(ctx: CallContext, key: tuple[bool, bool, bool], ref: str, scope: str | None, draft: dict[str, Any], now: Any) -> dict[str, Any]:
    """A plain direct message (``_plain_direct``) to ``ref`` (its statements' ``key``: by id, scoped, a reply) stored
    and its recipient woken: on PostgreSQL one statement, pipelined with the other sends of this replica that wait
    for a connection meanwhile (one round trip and one commit for them all). Sent by id to an agent with a live
    stream on this replica that has room, it is handed to that stream (``core/handoff``)."""
    params = {"ref": ref, "tenant_id": scope}
    reader = ctx.hub.handoffs.reserve_reader(ref) if key[0] else None
    handed_until = now + timedelta(seconds=reader.visibility_seconds) if reader is not None else None
    row = None
    try:
        row = await ctx.store.write_together(message_ops.send_direct_all, (_RECIPIENT[key[:2]], _DIRECT_SEND[key]), (params, draft, now, handed_until))
    finally:
        if reader is not None and (row is None or not row["handed"]):
            reader.unreserve_message()  # no such agent (for this sender), an earlier delivery is due, or it failed
    if row is None:
        raise _no_agent([ref])
    if reader is not None and row["handed"]:
        reader.hand_message(row)
    ctx.hub.activity.count(row["tenant_id"], "messages")
    await ctx.notifier.publish(_event(row))
    return message_ops.queued(row)


def _event(row: dict[str, Any]) -> Event:
    data = {"message_id": row["message_id"], "from_agent": row["sender_id"], "message_type": row["message_type"]}
    if row["kind"] == "direct":
        handed = {"handed": True} if row.get("handed") else {}  # (its reader has it: only views of messages are woken)
        return Event("message_received", row["tenant_id"], {**data, "to_agent": row["recipient_id"], **handed})
    if row["kind"] == "broadcast":
        return Event("broadcast_message", row["tenant_id"], data)
    return Event("topic_message", row["tenant_id"], {**data, "topic": row["topic"]})


async def expire_replies(hub: Hub) -> None:
    """Request/reply (seed 001): a message whose expected.timeout_ms passed without a reply brings its sender a
    ``failure`` message with intent ``timeout``. Each due message is claimed atomically, so replicas never double it."""
    now = hub.clock.now()
    if not await hub.store.read(message_ops.any_reply_due, now):
        return

    def op(conn: Connection) -> list[dict[str, Any]]:
        failures = []
        for due in message_ops.claim_due_replies(conn, now):
            timeout_ms = (due["expected"] or {}).get("timeout_ms")
            failures.append(
                {
                    "message_id": new_id("msg"),
                    "tenant_id": due["tenant_id"],
                    "kind": "direct",
                    "sender_id": SYSTEM,
                    "recipient_id": due["sender_id"],
                    "topic": None,
                    "message_type": "system",
                    "performative": "failure",
                    "intent": "timeout",
                    "priority": due["priority"],
                    "content": {
                        "error": "Request timeout",
                        "timeout": timeout_ms,
                        "original_message_id": due["message_id"],
                        "to_agent": due["recipient_id"],
                        "topic": due["topic"],
                    },
                    "correlation": {"reply_to": due["message_id"], **_conversation(due)},
                    "conversation_id": due["conversation_id"],
                    "expected": None,
                    "context": {},
                    "idempotency_key": None,
                    "created_at": now,
                    "expires_at": None,
                    "reply_due_at": None,
                }
            )
        for row in failures:
            message_ops.send(conn, row["tenant_id"], SYSTEM, [row], now)
        return failures

    for row in await hub.store.write(op):
        await hub.notifier.publish(_event(row))


def _conversation(row: dict[str, Any]) -> dict[str, str]:
    return {"conversation_id": row["conversation_id"]} if row["conversation_id"] else {}


async def check_recipient(ctx: CallContext, ref: str) -> None:
    """404 unless ``ref`` names an agent the caller may send to: a tool that sends after doing something checks first."""
    await ctx.store.read(_resolve_recipients, ctx.principal.tenant_scope(), [ref])


async def send(ctx: CallContext, req: SendMessage) -> MessageReceipt:
    return MessageReceipt.model_validate((await _send_all(ctx, [req]))[0])


async def send_batch(ctx: CallContext, req: SendBatch) -> BatchReceipt:
    receipts = await _send_all(ctx, req.messages)
    return BatchReceipt.model_validate({"receipts": receipts, "count": len(receipts)})


async def publish(ctx: CallContext, req: PublishMessage) -> MessageReceipt:
    return await send(ctx, SendMessage(**req.model_dump()))


async def _inbox_owner(ctx: CallContext, ref: str | None) -> dict[str, Any]:
    """Whose inbox: an agent's own; an admin or customer names an agent it can see."""
    p = ctx.principal
    if p.kind is PrincipalKind.agent:
        if ref is not None and ref != p.agent_id:
            row = await ctx.store.read(agent_ops.resolve, p.tenant_scope(), ref)
            if row["agent_id"] != p.agent_id:
                raise PermissionDenied("an agent reads only its own inbox", details={"agent": ref})
        return await ctx.store.read(agent_ops.resolve, p.tenant_scope(), p.agent_id)
    if ref is None:
        raise InvalidArgument("name the agent whose inbox to use ('agent'): this key is not an agent's", details={"field": "agent"})
    return await ctx.store.read(agent_ops.resolve, p.tenant_scope(), ref)


def message_from_row(row: dict[str, Any]) -> Message:
    return Message(
        message_id=row["message_id"],
        cursor=encode_cursor(row["seq"]),
        kind=row["kind"],
        from_agent=row["sender_id"],
        to_agent=row["recipient_id"],
        topic=row["topic"],
        subscription_id=row["subscription_id"],
        message_type=row["message_type"],
        performative=row["performative"],
        intent=row["intent"],
        priority=row["priority"],
        content=row["content"],
        correlation=row["correlation"],
        expected=row["expected"],
        context=row["context"],
        timestamp=row["created_at"],
        expires_at=row["expires_at"],
        delivery_count=row["delivery_count"],
    )


def message_json(row: dict[str, Any]) -> dict[str, Any]:
    """``message_from_row(row).model_dump(mode="json")``, built directly: live streams render one per delivery.

    (tests/test_streams.py checks the two agree.)
    """
    return {
        "message_id": row["message_id"],
        "cursor": encode_cursor(row["seq"]),
        "kind": row["kind"],
        "from_agent": row["sender_id"],
        "to_agent": row["recipient_id"],
        "topic": row["topic"],
        "subscription_id": row["subscription_id"],
        "message_type": row["message_type"],
        "performative": row["performative"],
        "intent": row["intent"],
        "priority": PriorityLevel(row["priority"]).name,
        "content": row["content"],
        "correlation": row["correlation"],
        "expected": row["expected"],
        "context": row["context"],
        "timestamp": iso_utc(row["created_at"]),
        "expires_at": iso_utc(row["expires_at"]) if row["expires_at"] else None,
        "delivery_count": row["delivery_count"],
    }


def _seq(cursor: str | None, field: str) -> int | None:
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise InvalidArgument("cursor is not a message cursor of this hub", details={"field": field})
    return int(value)


async def search(ctx: CallContext, req: SearchMessages) -> MessageSearch:
    """Stored messages, newest first, a page at a time. A named agent is resolved among those the caller may see (the
    404 of an unknown one otherwise), and the search keeps to its tenant; an agent finds only what
    ``message_ops.visible_to`` lets it see."""
    p = ctx.principal
    tenant_id = await tenant_in_scope(ctx, req.tenant)
    before = _seq(req.cursor, "cursor")

    def op(conn: Connection) -> message_ops.Found:
        sender = agent_ops.resolve(conn, tenant_id, req.from_agent) if req.from_agent not in (None, SYSTEM) else None
        recipient = agent_ops.resolve(conn, tenant_id, req.to_agent) if req.to_agent is not None else None
        named = sender or recipient  # the admin naming an agent searches its tenant: every index starts with one
        query = message_ops.Search(
            tenant_id=tenant_id or (named["tenant_id"] if named else None),
            sender_id=sender["agent_id"] if sender else req.from_agent,
            recipient_id=recipient and recipient["agent_id"],
            topic=req.topic,
            kind=req.kind,
            message_type=req.message_type,
            performative=req.performative.value if req.performative else None,
            since=req.since,
            until=req.until,
            text=req.text,
        )
        return message_ops.search(conn, query, p.agent_id, before, req.limit)

    found = await ctx.store.read(op)
    return MessageSearch(
        messages=[stored_message(r) for r in found.rows], has_more=found.next_cursor is not None, next_cursor=found.next_cursor, partial=found.partial
    )


def stored_message(row: dict[str, Any]) -> StoredMessage:
    return StoredMessage.model_validate({**row, "from_agent": row["sender_id"], "to_agent": row["recipient_id"]})


async def receive(ctx: CallContext, req: Receive) -> Inbox:
    agent = await _inbox_owner(ctx, req.agent)
    since = _seq(req.since, "since")
    deadline = time.monotonic() + req.wait
    keys = [inbox_key(agent["agent_id"]), f"tenant:{agent['tenant_id']}"]
    while True:
        with ctx.hub.wakeups.armed(keys) as woken:
            rows = await ctx.store.write(
                lambda conn: message_ops.receive(
                    conn,
                    agent,
                    since=since,
                    message_type=req.message_type,
                    performative=req.performative.value if req.performative else None,
                    conversation_id=req.conversation_id,
                    limit=req.limit,
                    visibility=timedelta(seconds=req.visibility_timeout),
                    now=ctx.clock.now(),
                )
            )
            remaining = ctx.hub.wakeups.remaining(deadline)
            if rows or remaining <= 0:
                return Inbox(messages=[message_from_row(r) for r in rows], count=len(rows))
            await woken.wait(remaining)  # then one last look, and an empty answer


async def ack(ctx: CallContext, req: Ack) -> Acked:
    p = ctx.principal
    if p.kind is PrincipalKind.agent and p.agent_id is not None and req.agent in (None, p.agent_id):
        tenant_id, agent_id = p.tenant_id, p.agent_id  # its own inbox (a runtime acks all the time): nothing to read first
    else:
        agent = await _inbox_owner(ctx, req.agent)
        tenant_id, agent_id = agent["tenant_id"], agent["agent_id"]
    up_to = _seq(req.up_to, "up_to")
    message_ids = list(dict.fromkeys(req.message_ids))
    now = ctx.clock.now()
    if ctx.store.dialect == "postgresql" and message_ids and up_to is None:  # the common ack: one statement
        count = await ctx.store.write_statement(message_ops.ack_found, agent_id, message_ids, now)
        if count is not None:
            return Acked(acked=count)
    return Acked(acked=await ctx.store.write(message_ops.ack, tenant_id, agent_id, message_ids, up_to, now))


async def subscribe(ctx: CallContext, req: Subscribe) -> Subscription:
    agent = await _inbox_owner(ctx, req.agent)
    row = {
        "subscription_id": new_id("sub"),
        "tenant_id": agent["tenant_id"],
        "agent_id": agent["agent_id"],
        "topics": list(dict.fromkeys(req.topics)),
        "event_types": list(dict.fromkeys(req.event_types)),
        "created_at": ctx.clock.now(),
    }
    await ctx.store.write(shared_ops.subscribe, row)
    return Subscription(status="active", **row)


async def unsubscribe(ctx: CallContext, req: Unsubscribe) -> Unsubscribed:
    p = ctx.principal
    await ctx.store.write(shared_ops.unsubscribe, req.subscription_id, p.agent_id, p.tenant_scope())
    return Unsubscribed(subscription_id=req.subscription_id, status="removed")
