"""Messages, inboxes and read positions.

A message is stored once. A direct message gets one inbox row at send time; broadcast and topic
messages get an inbox row for an agent only when that agent's read position passes them (on
receive), so a broadcast costs one row however many agents the tenant has, and an agent that never
comes back costs nothing. Inbox rows carry the delivery state: visible_at (the visibility timeout),
delivery_count and acked_at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)

from agora_sdk.errors import NotFound

from ..base import point_read
from ..prepared import Prepared
from ..schema import inbox, messages, read_positions, subscriptions
from .dialect import one_of, serialize_appends, upsert_insert

BROADCAST_STREAM = "broadcast"
PULL_BATCH = 1000

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
            conn.execute(
                update(messages)
                .where(messages.c.tenant_id == tenant_id, messages.c.message_id.in_(answered), messages.c.reply_due_at.is_not(None))
                .values(reply_due_at=None)
            )
        if any(r["kind"] != "direct" for r in new):
            serialize_appends(conn, f"fanout:{tenant_id}")
        seqs = _append(conn, new)
        direct = [
            {
                "agent_id": r["recipient_id"],
                "seq": seq,
                "tenant_id": tenant_id,
                "priority": r["priority"],
                "subscription_id": None,
                "visible_at": now,
                "delivery_count": 0,
                "acked_at": None,
            }
            for r, seq in zip(new, seqs)
            if r["kind"] == "direct"
        ]
        if direct:
            _INSERT_DELIVERIES.execute_many(conn, direct)
    return receipts


_POSITION = Prepared(
    select(read_positions.c.position).where(
        read_positions.c.agent_id == bindparam("agent_id"), read_positions.c.stream == bindparam("stream")
    )
)
_BROADCASTS_AFTER = Prepared(
    select(messages.c.seq, messages.c.priority, messages.c.sender_id)
    .where(messages.c.tenant_id == bindparam("tenant_id"), messages.c.seq > bindparam("position"), messages.c.kind == "broadcast")
    .order_by(messages.c.seq)
    .limit(PULL_BATCH)
)
_SUBSCRIPTIONS = Prepared(
    select(subscriptions.c.subscription_id, subscriptions.c.topics).where(subscriptions.c.agent_id == bindparam("agent_id"))
)
_ACK_UP_TO = Prepared(
    update(inbox)
    .where(
        inbox.c.agent_id == bindparam("b_agent_id"), inbox.c.seq <= bindparam("up_to"), inbox.c.acked_at.is_(None),
        inbox.c.delivery_count > 0,
    )
    .values(acked_at=bindparam("now"))
)


def _position(conn: Connection, agent_id: str, stream: str) -> int | None:
    position: int | None = _POSITION.scalar(conn, {"agent_id": agent_id, "stream": stream})
    return position


def _set_position(conn: Connection, agent_id: str, stream: str, position: int) -> None:
    _position_upsert(conn.dialect.name).execute(conn, {"agent_id": agent_id, "stream": stream, "position": position})


# Built once per engine: both run for each pull of each stream.
@lru_cache(maxsize=2)
def _position_upsert(dialect: str) -> Prepared:
    stmt = upsert_insert(dialect, read_positions)
    return Prepared(stmt.on_conflict_do_update(index_elements=["agent_id", "stream"], set_={"position": stmt.excluded.position}))


@lru_cache(maxsize=2)
def _hide(dialect: str) -> Prepared:
    """Hide deliveries of one agent, counting the delivery: one statement for any count of seqs (a statement per row
    handed the GIL back and forth once per row)."""
    return Prepared(
        update(inbox)
        .where(inbox.c.agent_id == bindparam("b_agent_id"), one_of(dialect, inbox.c.seq, "seqs"))
        .values(visible_at=bindparam("until"), delivery_count=inbox.c.delivery_count + 1)
    )


@lru_cache(maxsize=2)
def _deliveries_insert(dialect: str) -> Prepared:
    """Pulled deliveries, each added once (``INSERT … ON CONFLICT DO NOTHING``)."""
    return Prepared(upsert_insert(dialect, inbox).on_conflict_do_nothing(index_elements=["agent_id", "seq"]))


def _pull(
    conn: Connection, agent_id: str, tenant_id: str, stream: str, source: Any, subscription_id: str | None,
    start: Callable[[], int], now: datetime,
) -> None:
    """Move the agent's read position over ``source`` messages (None: the tenant's broadcasts), giving it an inbox
    row for each."""
    position = _position(conn, agent_id, stream)
    if position is None:  # the first pull of this stream: only then is the starting point worked out
        position = start()
    if source is None:
        found = [(r["seq"], r["priority"], r["sender_id"]) for r in _BROADCASTS_AFTER.rows(conn, {"tenant_id": tenant_id, "position": position})]
    else:
        found = conn.execute(
            select(messages.c.seq, messages.c.priority, messages.c.sender_id)
            .where(messages.c.tenant_id == tenant_id, messages.c.seq > position, source)
            .order_by(messages.c.seq)
            .limit(PULL_BATCH)
        ).all()
    if not found:
        if _position(conn, agent_id, stream) is None:
            _set_position(conn, agent_id, stream, position)
        return
    mine = [
        {
            "agent_id": agent_id,
            "seq": seq,
            "tenant_id": tenant_id,
            "priority": priority,
            "subscription_id": subscription_id,
            "visible_at": now,
            "delivery_count": 0,
            "acked_at": None,
        }
        for seq, priority, sender in found
        if sender != agent_id  # nobody receives its own broadcast
    ]
    if mine:
        _deliveries_insert(conn.dialect.name).execute_many(conn, mine)
    _set_position(conn, agent_id, stream, found[-1][0])


def _topic_filter(patterns: list[str]) -> Any:
    """'builds.*' -> topic LIKE 'builds.%' (a star matches one or more segments)."""
    likes = []
    for pattern in patterns:
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
        likes.append(messages.c.topic.like(escaped, escape="\\"))
    return and_(messages.c.kind == "topic", or_(*likes))


KINDS = ("direct", "broadcast", "topic")


def _latest_statement(before: bool) -> Prepared:
    """The newest seq of a tenant's messages of one kind (optionally created before a time): a backward walk of
    ix_messages_fanout that stops at the first match. ``max(seq)`` over the tenant's messages walked every one of
    them (100 ms at 200,000 messages, on the writer, for each new agent's first receive)."""
    stmt = select(messages.c.seq).where(messages.c.tenant_id == bindparam("tenant_id"), messages.c.kind == bindparam("kind"))
    if before:
        stmt = stmt.where(messages.c.created_at < bindparam("before"))
    return Prepared(stmt.order_by(messages.c.seq.desc()).limit(1))


_LATEST = {before: _latest_statement(before) for before in (False, True)}


def latest_of(conn: Connection, tenant_id: str, kind: str, before: datetime | None = None) -> int:
    """The newest seq of the tenant's ``kind`` messages (created before ``before``, if given); 0 if none."""
    params = {"tenant_id": tenant_id, "kind": kind, **({"before": before} if before is not None else {})}
    seq = _LATEST[before is not None].scalar(conn, params)
    return int(seq or 0)


def latest_seq(conn: Connection, tenant_id: str) -> int:
    """The newest seq of any of the tenant's messages; 0 if none."""
    return max(latest_of(conn, tenant_id, kind) for kind in KINDS)


def pull_shared(conn: Connection, agent: dict[str, Any], now: datetime) -> None:
    """Give the agent inbox rows for the broadcasts and subscribed topic messages its read positions have not passed."""
    agent_id, tenant_id = agent["agent_id"], agent["tenant_id"]
    _pull(
        conn, agent_id, tenant_id, BROADCAST_STREAM, None, None,
        lambda: latest_of(conn, tenant_id, "broadcast", before=agent["registered_at"]), now,
    )
    for sub in _SUBSCRIPTIONS.rows(conn, {"agent_id": agent_id}):
        if sub["topics"]:
            _pull(conn, agent_id, tenant_id, f"sub:{sub['subscription_id']}", _topic_filter(sub["topics"]), sub["subscription_id"], lambda: 0, now)


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
    pull_shared(conn, agent, now)
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


def ack(conn: Connection, agent_id: str, message_ids: list[str], up_to: int | None, now: datetime) -> int:
    """Ack by id (every id must be in this agent's inbox: 404 otherwise) and/or every delivered one up to a cursor."""
    acked = 0
    if message_ids:
        found = dict(
            conn.execute(
                select(messages.c.message_id, inbox.c.seq)
                .join(messages, messages.c.seq == inbox.c.seq)
                .where(inbox.c.agent_id == agent_id, messages.c.message_id.in_(message_ids))
            ).all()
        )
        missing = sorted(set(message_ids) - found.keys())
        if missing:
            raise NotFound(f"{len(missing)} message(s) are not in this inbox", details={"message_ids": missing[:50]})
        acked += conn.execute(
            update(inbox)
            .where(inbox.c.agent_id == agent_id, inbox.c.seq.in_(list(found.values())), inbox.c.acked_at.is_(None))
            .values(acked_at=now)
        ).rowcount
    if up_to is not None:
        acked += _ACK_UP_TO.execute(conn, {"b_agent_id": agent_id, "up_to": up_to, "now": now})
    return acked


def subscribe(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    conn.execute(insert(subscriptions).values(**row))
    _set_position(conn, row["agent_id"], f"sub:{row['subscription_id']}", latest_of(conn, row["tenant_id"], "topic"))
    return row


def unsubscribe(conn: Connection, subscription_id: str, agent_scope: str | None, tenant_scope: str | None) -> None:
    stmt = delete(subscriptions).where(subscriptions.c.subscription_id == subscription_id)
    if agent_scope is not None:
        stmt = stmt.where(subscriptions.c.agent_id == agent_scope)
    if tenant_scope is not None:
        stmt = stmt.where(subscriptions.c.tenant_id == tenant_scope)
    if conn.execute(stmt).rowcount == 0:
        raise NotFound(f"no subscription '{subscription_id}'", details={"subscription_id": subscription_id})
    conn.execute(delete(read_positions).where(read_positions.c.stream == f"sub:{subscription_id}"))


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


def purge(conn: Connection, acked_before: datetime, now: datetime) -> dict[str, int]:
    """Retention: drop acked deliveries, expired messages, and messages nobody still has to receive."""
    acked = conn.execute(delete(inbox).where(inbox.c.acked_at < acked_before)).rowcount
    expired_seqs = select(messages.c.seq).where(messages.c.expires_at < now)
    conn.execute(delete(inbox).where(inbox.c.seq.in_(expired_seqs)))
    expired = conn.execute(delete(messages).where(messages.c.expires_at < now)).rowcount
    still_pending = select(inbox.c.seq).where(inbox.c.seq == messages.c.seq).exists()
    old = conn.execute(delete(messages).where(messages.c.created_at < acked_before, ~still_pending)).rowcount
    return {"acked_deliveries": acked, "expired_messages": expired, "old_messages": old}
