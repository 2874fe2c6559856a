"""Messages and inboxes.

A message is stored once. A direct message gets one inbox row at send time; broadcast and topic
messages are read through per-agent read positions (``shared``), so a broadcast costs one row however
many agents the tenant has, and an agent that never comes back costs nothing. Inbox rows carry the
delivery state: visible_at (the visibility timeout), delivery_count and acked_at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Text, bindparam, case, cast, delete, exists, func, insert, literal, null, or_, select, true, tuple_, union, update

from agora_sdk.errors import NotFound

from ..base import point_read
from ..prepared import Prepared
from ..schema import agents, inbox, messages
from . import agents as agents_ops
from . import conversations as conversation_ops
from . import shared
from .dialect import broad, one_of, serialize_appends
from .pagination import encode_cursor, page

_INSERT_MESSAGES_RETURNING = insert(messages).returning(messages.c.seq, sort_by_parameter_order=True)
_INSERT_MESSAGES = Prepared(insert(messages))
_INSERT_DELIVERIES = Prepared(insert(inbox))


def _append(conn: Connection, rows: list[dict[str, Any]]) -> list[int]:
    """Insert messages; their seqs, in order.

    On SQLite one executemany, and the seqs are the last ``len(rows)`` rowids: the one writer connection gets them
    handed out consecutively in one statement (AUTOINCREMENT never reuses one). An INSERT … RETURNING per row cost
    twice as much of the writer thread. PostgreSQL returns them from one multi-row INSERT."""
    if conn.dialect.name != "sqlite":
        return list(conn.execute(_INSERT_MESSAGES_RETURNING, rows).scalars().all())
    if len(rows) == 1:  # the common send
        return [int(_INSERT_MESSAGES.insert(conn, rows[0]))]
    _INSERT_MESSAGES.execute_many(conn, rows)
    last = int(conn.connection.driver_connection.execute("SELECT last_insert_rowid()").fetchone()[0])
    return list(range(last - len(rows) + 1, last + 1))


def _receipt(row: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "message_id": row["message_id"],
        "status": status,
        "timestamp": row["created_at"],
        "kind": row["kind"],
        "to_agent": row.get("recipient_id"),
        "topic": row.get("topic"),
    }


def send(conn: Connection, tenant_id: str, sender_id: str, rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Store the messages (idempotency keys honoured, also within the batch) and fill direct inboxes."""
    return _store(conn, tenant_id, sender_id, rows, now)[0]


def _store(
    conn: Connection, tenant_id: str, sender_id: str, rows: list[dict[str, Any]], now: datetime, handed_until: datetime | None = None
) -> tuple[list[dict[str, Any]], list[int]]:
    """``send``, also giving the new messages' seqs; with ``handed_until``, their deliveries are handed out already
    (a live stream takes them: ``send_direct``)."""
    keys = [r["idempotency_key"] for r in rows if r["idempotency_key"]]
    seen: dict[str, dict[str, Any]] = {}
    if keys:
        earlier = conn.execute(
            select(messages).where(
                messages.c.tenant_id == tenant_id, messages.c.sender_id == sender_id, messages.c.idempotency_key.in_(keys)
            )
        ).mappings()
        seen = {r["idempotency_key"]: dict(r) for r in earlier}
    receipts: list[dict[str, Any]] = []
    new: list[dict[str, Any]] = []
    seqs: list[int] = []
    for row in rows:
        key = row["idempotency_key"]
        if key and key in seen:
            receipts.append(_receipt(seen[key], "duplicate"))
            continue
        if key:
            seen[key] = row
        new.append(row)
        receipts.append(_receipt(row, "queued"))
    if new:
        answered = [r["correlation"]["reply_to"] for r in new if (r["correlation"] or {}).get("reply_to")]
        if answered:  # a reply in time: the original's sender stops waiting
            _release(conn.dialect.name).execute(conn, {"b_tenant_id": tenant_id, "answered": answered})
        if any(r["kind"] != "direct" for r in new):
            serialize_appends(conn, f"fanout:{tenant_id}")
        seqs = _append(conn, new)
        for r in new:
            if r["conversation_id"]:
                conversation_ops.touch(conn, tenant_id, r["conversation_id"], now, r["content"], [conversation_ops.agent(r["sender_id"]), r["recipient_id"]])
        direct = [
            {
                "agent_id": r["recipient_id"],
                "seq": seq,
                "tenant_id": tenant_id,
                "priority": r["priority"],
                "subscription_id": None,
                "visible_at": handed_until or now,
                "delivery_count": int(handed_until is not None),
                "acked_at": None,
            }
            for r, seq in zip(new, seqs)
            if r["kind"] == "direct"
        ]
        if direct:
            _INSERT_DELIVERIES.execute_many(conn, direct)
    return receipts, seqs


def _due_before(agent_id: Any) -> Select[Any]:
    """A delivery of the agent (``agent_id``: a value or a column) that a reader could take now: one a message sent
    now must not overtake."""
    pending, message = inbox.alias("pending"), messages.alias("pending_message")
    return select(pending.c.seq).join(message, message.c.seq == pending.c.seq).where(
        pending.c.agent_id == agent_id,
        pending.c.acked_at.is_(None),
        pending.c.visible_at <= bindparam("now"),
        or_(message.c.expires_at.is_(None), message.c.expires_at > bindparam("now")),
    )


_DUE_BEFORE = Prepared(_due_before(bindparam("agent_id")).limit(1))


def direct_send(recipient: Select[Any], answers: bool = False) -> Prepared:
    """PostgreSQL's whole send of one direct message, in one statement: the agent ``recipient`` selects (its
    ``agent_id`` and ``tenant_id``, by the parameters it binds) gets the message (the message's columns but seq,
    tenant_id and recipient_id, as parameters) and its delivery (visible at ``now``, or handed out until
    ``handed_until`` when that is given and no earlier delivery is due); a message that ``answers`` (a reply)
    releases the sender of the message ``reply_to`` from waiting, as ``send`` does. The statement's row is that
    agent's ``agent_id`` and ``tenant_id``, the message's ``seq`` and its delivery's ``delivery_count`` (1: handed
    out); NULLs when ``recipient`` found nobody (nothing was written): always one row, so that sends pipelined
    together (``send_direct_all``) get their answers in order. One statement is its own transaction: the store sends
    it without BEGIN and COMMIT, one round trip for the send where the statements of ``send`` take five (six for a
    reply)."""
    found = recipient.cte("recipient")
    columns = [c for c in messages.c if c.name != "seq"]
    by_recipient = {"tenant_id": found.c.tenant_id, "recipient_id": found.c.agent_id}
    stored = (
        insert(messages)
        .from_select([c.name for c in columns], select(*(by_recipient.get(c.name, bindparam(c.name, type_=c.type)) for c in columns)))
        .returning(messages.c.seq, messages.c.tenant_id, messages.c.recipient_id, messages.c.priority)
        .cte("stored")
    )
    now = bindparam("now", type_=inbox.c.visible_at.type)
    handing = bindparam("handed_until", type_=inbox.c.visible_at.type)
    older = exists(_due_before(stored.c.recipient_id))  # (CASE tests in order: not looked for unless handing)
    delivery = select(
        stored.c.recipient_id, stored.c.seq, stored.c.tenant_id, stored.c.priority, null(),
        case((handing.is_(None), now), (older, now), else_=handing),
        case((handing.is_(None), literal(0)), (older, literal(0)), else_=literal(1)),
        null(),
    )  # fmt: skip
    names = ["agent_id", "seq", "tenant_id", "priority", "subscription_id", "visible_at", "delivery_count", "acked_at"]
    delivered = insert(inbox).from_select(names, delivery).returning(inbox.c.agent_id, inbox.c.tenant_id, inbox.c.seq, inbox.c.delivery_count).cte("delivered")
    one = select(literal(1).label("one")).subquery("one")  # a row even when nobody was found: one per send, in order
    statement = select(delivered.c.agent_id, delivered.c.tenant_id, delivered.c.seq, delivered.c.delivery_count).select_from(
        one.outerjoin(delivered, true())
    )
    if answers:
        released = (
            update(messages)
            .where(
                messages.c.tenant_id == select(found.c.tenant_id).scalar_subquery(),
                messages.c.message_id == bindparam("reply_to", type_=messages.c.message_id.type),
                messages.c.reply_due_at.is_not(None),
            )
            .values(reply_due_at=null())
            .cte("released")
        )
        statement = statement.add_cte(released)
    return Prepared(statement)


def send_direct(
    conn: Connection, recipient: Prepared, statement: Prepared, params: dict[str, Any], row: dict[str, Any], now: datetime,
    handed_until: datetime | None = None,
) -> dict[str, Any] | None:
    """One direct message (``row``, but for its tenant_id and recipient_id) to the agent ``recipient`` selects with
    ``params``; the message as stored, with its ``seq`` and whether its delivery was ``handed`` out until
    ``handed_until`` (asked for by a live stream of the recipient that takes it: only when no earlier delivery of
    the recipient is due, which the message would overtake); None when there is no such agent (nothing is written).
    On PostgreSQL one statement, ``statement`` (``direct_send(recipient)``); elsewhere the recipient's read, then
    ``send``."""
    if conn.dialect.name == "postgresql":
        return _sent(row, statement.first(conn, _direct_values(params, row, now, handed_until)))
    found = recipient.first(conn, params)
    if found is None:
        return None
    stored = {**row, "tenant_id": found["tenant_id"], "recipient_id": found["agent_id"]}
    handed = handed_until is not None and _DUE_BEFORE.first(conn, {"agent_id": found["agent_id"], "now": now}) is None
    (seq,) = _store(conn, stored["tenant_id"], stored["sender_id"], [stored], now, handed_until if handed else None)[1]
    return {**stored, "seq": seq, "handed": handed}


DirectSend = tuple[dict[str, Any], dict[str, Any], datetime, datetime | None]  # send_direct's params, row, now, handed_until


def send_direct_all(conn: Connection, recipient: Prepared, statement: Prepared, sends: list[DirectSend]) -> list[dict[str, Any] | None]:
    """``send_direct`` for each of ``sends``, its answer in its place. On PostgreSQL, several are pipelined: one round
    trip and one commit for them all, all kept or none (one failing fails them all)."""
    if conn.dialect.name != "postgresql" or len(sends) == 1:
        return [send_direct(conn, recipient, statement, *send) for send in sends]
    found = statement.first_each(conn, [_direct_values(*send) for send in sends])
    return [_sent(send[1], one) for send, one in zip(sends, found)]


def _direct_values(params: dict[str, Any], row: dict[str, Any], now: datetime, handed_until: datetime | None) -> dict[str, Any]:
    """The values of ``direct_send``'s statement for one message."""
    return {**row, **params, "reply_to": (row["correlation"] or {}).get("reply_to"), "now": now, "handed_until": handed_until}


def _sent(row: dict[str, Any], found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The message as stored from ``direct_send``'s row for it; None when it found no recipient (nothing written)."""
    if found is None or found["agent_id"] is None:
        return None
    return {**row, "tenant_id": found["tenant_id"], "recipient_id": found["agent_id"], "seq": found["seq"], "handed": found["delivery_count"] == 1}


def queued(row: dict[str, Any]) -> dict[str, Any]:
    """The receipt of a message just stored."""
    return _receipt(row, "queued")


_ACK_UP_TO = Prepared(
    update(inbox)
    .where(
        inbox.c.agent_id == bindparam("b_agent_id"), inbox.c.seq <= bindparam("up_to"), inbox.c.acked_at.is_(None),
        inbox.c.delivery_count > 0,
    )
    .values(acked_at=bindparam("now"))
)


@lru_cache(maxsize=2)
def _hide(dialect: str) -> Prepared:
    """Hide deliveries of one agent, counting the delivery: one statement for any count of seqs (a statement per row
    handed the GIL back and forth once per row)."""
    return Prepared(
        update(inbox)
        .where(inbox.c.agent_id == bindparam("b_agent_id"), one_of(dialect, inbox.c.seq, "seqs"))
        .values(visible_at=bindparam("until"), delivery_count=inbox.c.delivery_count + 1)
    )


# Unacked, unexpired deliveries of the agent (parameters agent_id, now) joined with their messages; callers add the
# visibility rule and the order.
PENDING = (
    select(inbox.c.delivery_count, inbox.c.subscription_id, messages)
    .join(messages, messages.c.seq == inbox.c.seq)
    .where(
        inbox.c.agent_id == bindparam("agent_id"),
        inbox.c.acked_at.is_(None),
        or_(messages.c.expires_at.is_(None), messages.c.expires_at > bindparam("now")),
    )
)


def hand_out(conn: Connection, agent_id: str, rows: list[dict[str, Any]], visibility: timedelta, now: datetime) -> list[dict[str, Any]]:
    """Hide the deliveries a ``PENDING`` query found for ``visibility``, counting the delivery."""
    if rows:
        _hide(conn.dialect.name).execute(conn, {"b_agent_id": agent_id, "seqs": [r["seq"] for r in rows], "until": now + visibility})
    for r in rows:
        r["delivery_count"] += 1
    return rows


def receive(
    conn: Connection,
    agent: dict[str, Any],
    *,
    since: int | None,
    message_type: str | None,
    performative: str | None,
    conversation_id: str | None,
    limit: int,
    visibility: timedelta,
    now: datetime,
) -> list[dict[str, Any]]:
    """Hand out up to ``limit`` visible messages, urgent first, hiding them for ``visibility``."""
    shared.pull_shared(conn, agent, now)
    stmt = PENDING.where(inbox.c.visible_at <= now)
    if since is not None:
        stmt = stmt.where(inbox.c.seq > since)
    if message_type:
        stmt = stmt.where(messages.c.message_type == message_type)
    if performative:
        stmt = stmt.where(messages.c.performative == performative)
    if conversation_id:
        stmt = stmt.where(messages.c.conversation_id == conversation_id)
    stmt = stmt.order_by(inbox.c.priority.desc(), inbox.c.seq).limit(limit)
    rows = [dict(r) for r in conn.execute(stmt, {"agent_id": agent["agent_id"], "now": now}).mappings()]
    return hand_out(conn, agent["agent_id"], rows, visibility, now)


def inbox_depth(conn: Connection, agent_id: str, limit: int) -> int:
    """Messages in the agent's inbox not acked yet (handed out or waiting), counted up to ``limit``."""
    pending = select(inbox.c.seq).where(inbox.c.agent_id == agent_id, inbox.c.acked_at.is_(None)).limit(limit)
    return int(conn.execute(select(func.count()).select_from(pending.subquery())).scalar_one())


@lru_cache(maxsize=2)
def _release(dialect: str) -> Prepared:
    """The senders of the tenant's messages ``answered`` (their ids) stop waiting for a reply."""
    return Prepared(
        update(messages)
        .where(
            broad(dialect, messages.c.tenant_id == bindparam("b_tenant_id")), one_of(dialect, messages.c.message_id, "answered"),
            messages.c.reply_due_at.is_not(None),
        )
        .values(reply_due_at=None)
    )


@lru_cache(maxsize=2)
def _inbox_seqs_statement(dialect: str) -> Prepared:
    return Prepared(
        select(messages.c.message_id, inbox.c.seq)
        .join(messages, messages.c.seq == inbox.c.seq)
        .where(broad(dialect, inbox.c.agent_id == bindparam("agent_id")), one_of(dialect, messages.c.message_id, "message_ids"))
    )


@lru_cache(maxsize=2)
def _ack_seqs(dialect: str) -> Prepared:
    return Prepared(
        update(inbox)
        .where(inbox.c.agent_id == bindparam("b_agent_id"), one_of(dialect, inbox.c.seq, "seqs"), inbox.c.acked_at.is_(None))
        .values(acked_at=bindparam("now"))
    )


def _inbox_seqs(conn: Connection, agent_id: str, message_ids: list[str]) -> dict[str, int]:
    rows = _inbox_seqs_statement(conn.dialect.name).rows(conn, {"agent_id": agent_id, "message_ids": message_ids})
    return {r["message_id"]: r["seq"] for r in rows}


@lru_cache(maxsize=1)
def _ack_found_statement() -> Prepared:
    """PostgreSQL: ack the agent's deliveries of ``message_ids``, provided there is one for each of the ``count``;
    its row counts the deliveries found and those acked now."""
    found = (
        select(inbox.c.seq)
        .join(messages, messages.c.seq == inbox.c.seq)
        .where(inbox.c.agent_id == bindparam("agent_id"), one_of("postgresql", messages.c.message_id, "message_ids"))
        .cte("found")
    )
    every = select(func.count()).select_from(found).scalar_subquery()
    acked = (
        update(inbox)
        .where(inbox.c.agent_id == bindparam("agent_id"), inbox.c.seq == found.c.seq, inbox.c.acked_at.is_(None), every == bindparam("count"))
        .values(acked_at=bindparam("now", type_=inbox.c.acked_at.type))
        .returning(inbox.c.seq)
        .cte("acked")
    )
    return Prepared(select(every.label("found"), select(func.count()).select_from(acked).scalar_subquery().label("acked")))


def ack_found(conn: Connection, agent_id: str, message_ids: list[str], now: datetime) -> int | None:
    """``ack`` by ids of deliveries all in the agent's own inbox (the common ack of a live stream's messages), in one
    statement on PostgreSQL: how many were acked now; None, with nothing changed, when one of them is not there
    (lent from a broadcast or topic, or not this inbox's: ``ack`` sorts those out)."""
    row = _ack_found_statement().first(conn, {"agent_id": agent_id, "message_ids": message_ids, "count": len(message_ids), "now": now})
    assert row is not None
    return int(row["acked"]) if row["found"] == len(message_ids) else None


def ack(conn: Connection, tenant_id: str, agent_id: str, message_ids: list[str], up_to: int | None, now: datetime) -> int:
    """Ack by id (every id must be in this agent's inbox: 404 otherwise) and/or every delivered one up to a cursor.
    The agent's row is read only for shared messages (their streams start where it registered): the common ack, of
    direct messages by id, is its inbox's rows alone."""
    acked = 0
    if message_ids:
        found = _inbox_seqs(conn, agent_id, message_ids)
        missing = [m for m in message_ids if m not in found]
        if missing:  # broadcasts or topic messages lent to a live stream, or acked while lent
            shared_seqs = dict(
                conn.execute(
                    select(messages.c.message_id, messages.c.seq).where(
                        messages.c.tenant_id == tenant_id, messages.c.message_id.in_(missing), messages.c.kind != "direct"
                    )
                ).all()
            )
            if shared_seqs:
                agent = agents_ops.resolve(conn, tenant_id, agent_id)
                lent = shared.ack_lent(conn, agent, list(shared_seqs.values()))
                acked += len(lent)
                gone = lent | shared.acked_while_lent(conn, agent, [s for s in shared_seqs.values() if s not in lent])
                missing = [m for m in missing if shared_seqs.get(m) not in gone]
        if missing:
            raise NotFound(f"{len(missing)} message(s) are not in this inbox", details={"message_ids": sorted(missing)[:50]})
        acked += _ack_seqs(conn.dialect.name).execute(conn, {"b_agent_id": agent_id, "seqs": list(found.values()), "now": now})
    if up_to is not None:
        acked += _ACK_UP_TO.execute(conn, {"b_agent_id": agent_id, "up_to": up_to, "now": now})
        acked += shared.ack_up_to(conn, agents_ops.resolve(conn, tenant_id, agent_id), up_to)
    return acked


@dataclass(frozen=True)
class Search:
    """What ``search`` looks for: every field set narrows the messages down (agents by id, as stored)."""

    tenant_id: str | None = None
    sender_id: str | None = None
    recipient_id: str | None = None
    topic: str | None = None
    kind: str | None = None
    message_type: str | None = None
    performative: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    since_seq: int | None = None  # a scanning search's window

    @property
    def scans(self) -> bool:
        """Whether a filter no index serves (text, message type, performative) narrows the search: then a page reads
        a bounded window of seqs (``SCAN_WINDOW``), or a rare match would read every message of the tenant."""
        return self.text is not None or self.message_type is not None or self.performative is not None

    def conditions(self) -> list[ColumnElement[bool]]:
        c = messages.c
        equal = {
            c.sender_id: self.sender_id, c.recipient_id: self.recipient_id, c.topic: self.topic,
            c.message_type: self.message_type, c.performative: self.performative,
        }  # fmt: skip
        found = [column == value for column, value in equal.items() if value is not None]
        found += [written(column, value) for column, value in ((c.tenant_id, self.tenant_id), (c.kind, self.kind)) if value]
        if self.since is not None:
            found.append(c.created_at >= self.since)
        if self.until is not None:
            found.append(c.created_at < self.until)
        if self.since_seq is not None:
            found.append(c.seq >= self.since_seq)
        if self.text is not None:
            found.append(cast(c.content, Text).icontains(self.text, autoescape=True))
        return found


def written(column: Any, value: str) -> ColumnElement[bool]:
    """``column = value`` with the value written into the statement, not bound: tenants differ in size by orders of
    magnitude, and so may the kinds of a tenant's messages. PostgreSQL's plan for any value (which it may switch to
    after five runs) walked every message in seq order to find a small tenant's 30 (170 ms at 1,000,000 messages)
    instead of walking that tenant's index."""
    return column == bindparam(None, value, type_=column.type, literal_execute=True)


def page_statement(query: Search, reader: str | None, before: int | None, limit: int) -> Any:
    """The seqs of the newest ``limit`` messages below ``before`` that ``query`` finds, newest first; ``reader`` (an
    agent id, of ``query.tenant_id``) narrows them to those that agent may see.

    Each way an agent may see a message is walked apart, newest first, along an index that starts with the tenant and
    the one column it names (sender, recipient, kind), and the walks are merged: one walk with an OR of the three would
    read every message of the tenant."""
    c = messages.c
    ways = [[]] if reader is None else visible_to(reader)
    where = [*query.conditions(), *([c.seq < before] if before is not None else [])]
    walks = [select(c.seq).where(*way, *where).order_by(c.seq.desc()).limit(limit) for way in ways]
    if len(walks) == 1:
        return walks[0]
    merged = union(*(select(walk.subquery().c.seq) for walk in walks)).subquery()
    return select(merged.c.seq).order_by(merged.c.seq.desc()).limit(limit)


def visible_to(agent_id: str) -> list[list[ColumnElement[bool]]]:
    """The ways an agent may see a message of its tenant: it sent it, it was sent directly to it, or it is a broadcast
    (addressed to every agent of the tenant). Not others' topic messages: which of those reached it depends on its
    subscriptions over time."""
    c = messages.c
    return [[c.sender_id == agent_id], [c.recipient_id == agent_id], [written(c.kind, "broadcast")]]


@lru_cache(maxsize=2)
def _found(dialect: str) -> Prepared:
    """Whole messages by seq, with their agents' names. A statement of its own, without the page's ORDER BY and LIMIT:
    joined to the page's, PostgreSQL's plan for any parameter values walked the whole table in seq order instead."""
    sender, recipient = agents.alias("sender"), agents.alias("recipient")
    return Prepared(
        select(messages, sender.c.agent_name.label("from_agent_name"), recipient.c.agent_name.label("to_agent_name"))
        .outerjoin(sender, sender.c.agent_id == messages.c.sender_id)
        .outerjoin(recipient, recipient.c.agent_id == messages.c.recipient_id)
        .where(one_of(dialect, messages.c.seq, "seqs"))
    )


# Seqs a scanning search (Search.scans) reads per page: ~30 ms on SQLite, ~100 ms on PostgreSQL on this project's
# 2-core machine, where reading 1,000,000 messages for a word none holds took 290 ms and 950 ms.
SCAN_WINDOW = 100_000


@dataclass(frozen=True)
class Found:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    partial: bool  # the scan window ended before ``limit`` messages were found; older ones remain to search


def search(conn: Connection, query: Search, reader: str | None, before: int | None, limit: int) -> Found:
    """A page of ``limit`` messages, newest first, and the cursor of the next one (keyset: below the page's last seq,
    or below the scan window a scanning search stopped at)."""
    floor = None
    if query.scans:
        top = before if before is not None else (conn.execute(select(func.max(messages.c.seq))).scalar() or 0) + 1
        floor = top - SCAN_WINDOW
        query = replace(query, since_seq=floor)
    seqs = list(conn.execute(page_statement(query, reader, before, limit + 1)).scalars())
    rows = sorted(_found(conn.dialect.name).rows(conn, {"seqs": seqs}), key=lambda r: r["seq"], reverse=True) if seqs else []
    rows, next_cursor = page(rows, limit, lambda r: r["seq"])
    if next_cursor is None and floor is not None and _any_below(conn, query, floor):
        return Found(rows, encode_cursor(floor), partial=True)
    return Found(rows, next_cursor, partial=False)


def _any_below(conn: Connection, query: Search, seq: int) -> bool:
    """Whether the tenant (every tenant, for the admin) has a message below ``seq``: an index probe."""
    probe = select(messages.c.seq).where(messages.c.seq < seq)
    if query.tenant_id is not None:
        probe = probe.where(messages.c.tenant_id == query.tenant_id)
    return conn.execute(probe.limit(1)).first() is not None


_A_REPLY_DUE = Prepared(select(messages.c.seq).where(messages.c.reply_due_at <= bindparam("now")).limit(1))


@point_read
def any_reply_due(conn: Connection, now: datetime) -> bool:
    """An index probe, so the reply-timeout job (every 0.2 s) takes a write turn only when there is work."""
    return _A_REPLY_DUE.first(conn, {"now": now}) is not None


def claim_due_replies(conn: Connection, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Messages whose reply deadline passed, taken atomically (the deadline is cleared in the same statement)."""
    due = select(messages.c.seq).where(messages.c.reply_due_at <= now).limit(limit)
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    seqs = conn.execute(due).scalars().all()
    if not seqs:
        return []
    taken = conn.execute(
        update(messages)
        .where(messages.c.seq.in_(seqs), messages.c.reply_due_at.is_not(None))
        .values(reply_due_at=None)
        .returning(messages.c.message_id, messages.c.tenant_id, messages.c.sender_id, messages.c.recipient_id,
                   messages.c.topic, messages.c.priority, messages.c.expected, messages.c.conversation_id)
    ).mappings().all()
    return [dict(r) for r in taken if r["sender_id"] != "system"]


def _nobody_needs() -> ColumnElement[bool]:
    """A message no delivery is pending for and no live stream has been lent (retention may drop it)."""
    still_pending = select(inbox.c.seq).where(inbox.c.seq == messages.c.seq).exists()
    return ~still_pending & ~shared.still_lent(messages.c.seq, messages.c.tenant_id)


def purge(conn: Connection, acked_before: datetime, now: datetime, batch: int = 10_000) -> dict[str, int]:
    """Retention in one transaction (``purge_batch`` until it is done): what went, by part."""
    parts = {"acked": "acked_deliveries", "expired": "expired_messages", "old": "old_messages"}
    purged = dict.fromkeys(parts.values(), 0)
    cursor: Any = None
    while True:
        stage = parts[(cursor or ("acked",))[0]]
        dropped, cursor = purge_batch(conn, acked_before, now, batch, cursor)
        purged[stage] += dropped
        if cursor is None:
            return purged


@lru_cache(maxsize=2)
def _purge_statements(dialect: str) -> dict[str, Prepared]:
    """``purge_batch``'s statements, built and compiled once: a batch builds no SQL of its own, whose garbage would
    bring the collector's pauses into the sends' latency while a purge runs."""
    m = messages.c
    acked = select(inbox.c.agent_id, inbox.c.seq).where(inbox.c.acked_at < bindparam("before")).limit(bindparam("limit"))
    window = select(m.seq, m.created_at).where(m.created_at < bindparam("before")).order_by(m.created_at, m.seq).limit(bindparam("limit"))
    expired = select(m.seq).where(m.expires_at < bindparam("now")).limit(bindparam("limit"))
    if dialect == "postgresql":  # every replica runs the job: rows another replica's batch holds are left to it
        acked, window, expired = (q.with_for_update(skip_locked=True) for q in (acked, window, expired))
    after = tuple_(m.created_at, m.seq) > tuple_(bindparam("after_at", type_=m.created_at.type), bindparam("after_seq", type_=m.seq.type))
    return {
        "acked": Prepared(delete(inbox).where(tuple_(inbox.c.agent_id, inbox.c.seq).in_(acked))),
        "expired": Prepared(expired),
        "window": Prepared(window),
        "window_after": Prepared(window.where(after)),
        "free": Prepared(select(m.seq).where(one_of(dialect, m.seq, "seqs"), _nobody_needs())),
        "deliveries": Prepared(delete(inbox).where(one_of(dialect, inbox.c.seq, "seqs"))),
        "messages": Prepared(delete(messages).where(one_of(dialect, m.seq, "seqs"))),
    }


def purge_batch(conn: Connection, acked_before: datetime, now: datetime, limit: int, cursor: Any) -> tuple[int, Any]:
    """One batch of retention, at most ``limit`` rows: acked deliveries first, then expired messages, then old
    messages nobody still has to receive, walked in windows of ``limit`` by age (so a message kept because it is still
    to be received is looked at once per run, not once per batch). ``cursor``: where the last batch stopped (None to
    start); returns the rows dropped and where to go on (None: done)."""
    stage, *position = cursor or ("acked",)
    sql = _purge_statements(conn.dialect.name)
    if stage == "acked":
        n = sql["acked"].execute(conn, {"before": acked_before, "limit": limit})
        return n, ("acked",) if n == limit else ("expired",)
    if stage == "expired":
        seqs = [r["seq"] for r in sql["expired"].rows(conn, {"now": now, "limit": limit})]
        if seqs:
            sql["deliveries"].execute(conn, {"seqs": seqs})
        dropped = sql["messages"].execute(conn, {"seqs": seqs}) if seqs else 0
        return dropped, ("expired",) if len(seqs) == limit else ("old",)
    if position:
        seen = sql["window_after"].rows(conn, {"before": acked_before, "limit": limit, "after_at": position[0], "after_seq": position[1]})
    else:
        seen = sql["window"].rows(conn, {"before": acked_before, "limit": limit})
    if not seen:
        return 0, None
    free = [r["seq"] for r in sql["free"].rows(conn, {"seqs": [r["seq"] for r in seen]})]
    dropped = sql["messages"].execute(conn, {"seqs": free}) if free else 0
    return dropped, ("old", seen[-1]["created_at"], seen[-1]["seq"]) if len(seen) == limit else None


def purgeable(conn: Connection, acked_before: datetime, now: datetime) -> dict[str, int]:
    """What ``purge`` would drop now, counted."""
    counted = {
        "acked_deliveries": select(func.count()).select_from(inbox).where(inbox.c.acked_at < acked_before),
        "expired_messages": select(func.count()).select_from(messages).where(messages.c.expires_at < now),
        "old_messages": select(func.count()).select_from(messages).where(messages.c.created_at < acked_before, _nobody_needs()),
    }
    return {part: int(conn.execute(query).scalar_one()) for part, query in counted.items()}
