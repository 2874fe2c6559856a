"""Shared streams: a tenant's broadcasts and the topic messages of a subscription, stored once, read through per-agent
read positions.

Everything at or below an agent's position on a stream was handed to it in one of two forms:

* **inbox rows**, made when ``receive`` pulls the stream (rows carry the delivery state of each message), or
* **lent ranges**, made when a live stream hands the messages out straight from the shared stream: one row
  ``(low, high]`` per hand-out, hidden until ``visible_at``. A broadcast to 100 streaming agents then costs 100
  range rows per batch of messages, not 100 inbox rows per message. An ack up to a cursor shrinks or drops a range,
  an ack by id cuts the message out of its range; a range that comes back unacked, or went to a connection that
  resumes before it, turns into inbox rows (``reclaim``), and from there on it is an ordinary delivery.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, func, insert, or_, select, update

from ..prepared import Prepared
from ..schema import inbox, lent_ranges, messages, read_positions, subscriptions
from agora_sdk.errors import NotFound

from .dialect import one_of, serialize_appends, upsert_insert

BROADCAST_STREAM = "broadcast"
PULL_BATCH = 1000
KINDS = ("direct", "broadcast", "topic")

_POSITION = Prepared(
    select(read_positions.c.position).where(
        read_positions.c.agent_id == bindparam("agent_id"), read_positions.c.stream == bindparam("stream")
    )
)
_SUBSCRIPTIONS = Prepared(
    select(subscriptions.c.subscription_id, subscriptions.c.topics, subscriptions.c.created_at).where(subscriptions.c.agent_id == bindparam("agent_id"))
)


_BROADCAST = messages.c.kind == "broadcast"


def _broadcasts_after(*columns: Any) -> Prepared:
    return Prepared(
        select(*columns)
        .where(messages.c.tenant_id == bindparam("tenant_id"), messages.c.seq > bindparam("position"), _BROADCAST)
        .order_by(messages.c.seq)
        .limit(bindparam("limit"))
    )


_PULL_COLUMNS = (messages.c.seq, messages.c.priority, messages.c.sender_id)  # what an inbox row needs
_LEND_COLUMNS = (messages.c.seq, messages.c.kind, messages.c.sender_id, messages.c.created_at, messages.c.expires_at)
_BROADCASTS_TO_PULL = _broadcasts_after(*_PULL_COLUMNS)
_BROADCASTS_TO_LEND = _broadcasts_after(*_LEND_COLUMNS)


@lru_cache(maxsize=2)
def _whole_messages(dialect: str) -> Prepared:
    return Prepared(select(messages).where(one_of(dialect, messages.c.seq, "seqs")))


def whole_messages(conn: Connection, seqs: list[int]) -> list[dict[str, Any]]:
    """The messages stored under these seqs, whole."""
    return _whole_messages(conn.dialect.name).rows(conn, {"seqs": seqs})

_COUNT = select(func.count()).where(
    messages.c.tenant_id == bindparam("tenant_id"), messages.c.seq > bindparam("low"), messages.c.seq <= bindparam("high"),
    messages.c.sender_id != bindparam("agent_id"),
)
_COUNT_BROADCASTS = Prepared(_COUNT.where(_BROADCAST))
_LEND = Prepared(insert(lent_ranges))
# An ack up to a cursor (a live stream's client sends one every so often): the ranges below it, which go or shrink.
_LENT_BELOW = Prepared(
    select(lent_ranges).where(lent_ranges.c.agent_id == bindparam("b_agent_id"), lent_ranges.c.low < bindparam("up_to"))
)
_DROP_ACKED = Prepared(
    delete(lent_ranges).where(lent_ranges.c.agent_id == bindparam("b_agent_id"), lent_ranges.c.high <= bindparam("up_to"))
)
_SHRINK_ACKED = Prepared(
    update(lent_ranges)
    .where(lent_ranges.c.agent_id == bindparam("b_agent_id"), lent_ranges.c.low < bindparam("up_to"), lent_ranges.c.high > bindparam("up_to"))
    .values(low=bindparam("up_to"))
)
_LENT_DUE = Prepared(
    select(lent_ranges).where(lent_ranges.c.agent_id == bindparam("agent_id"), lent_ranges.c.visible_at <= bindparam("now"))
)
_NEXT_LENT_VISIBLE = Prepared(
    select(func.min(lent_ranges.c.visible_at)).where(
        lent_ranges.c.agent_id == bindparam("agent_id"), lent_ranges.c.visible_at > bindparam("now")
    )
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
def _deliveries_insert(dialect: str) -> Prepared:
    """Pulled deliveries, each added once (``INSERT … ON CONFLICT DO NOTHING``)."""
    return Prepared(upsert_insert(dialect, inbox).on_conflict_do_nothing(index_elements=["agent_id", "seq"]))


def _topic_filter(patterns: list[str]) -> Any:
    """'builds.*' -> topic LIKE 'builds.%' (a star matches one or more segments)."""
    likes = []
    for pattern in patterns:
        escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("*", "%")
        likes.append(messages.c.topic.like(escaped, escape="\\"))
    return and_(messages.c.kind == "topic", or_(*likes))


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


class _Source:
    """One shared stream of one agent: its name in read positions, which messages it carries, where it starts."""

    def __init__(
        self, conn: Connection, agent: dict[str, Any], stream: str, topics: list[str] | None = None, since: datetime | None = None
    ):
        self.conn, self.agent, self.stream = conn, agent, stream
        self.subscription_id = stream.removeprefix("sub:") if stream != BROADCAST_STREAM else None
        self.broadcasts = topics is None
        self.where = _BROADCAST if topics is None else _topic_filter(topics)
        self.since = agent["registered_at"] if since is None else since  # the first message it could receive

    def start(self) -> int:
        """Where a first read begins: the broadcasts an agent gets are those sent after it registered; a
        subscription's position is set when it is made."""
        if self.broadcasts:
            return latest_of(self.conn, self.agent["tenant_id"], "broadcast", before=self.agent["registered_at"])
        return 0

    def position(self) -> tuple[int, bool]:
        """The read position, and whether it is stored yet."""
        position = _position(self.conn, self.agent["agent_id"], self.stream)
        return (self.start(), False) if position is None else (position, True)

    def after(self, position: int, limit: int, lending: bool) -> list[dict[str, Any]]:
        """Up to ``limit`` messages past ``position``, oldest first, with what a lent message or an inbox row needs."""
        if self.broadcasts:
            statement = _BROADCASTS_TO_LEND if lending else _BROADCASTS_TO_PULL
            return statement.rows(self.conn, {"tenant_id": self.agent["tenant_id"], "position": position, "limit": limit})
        stmt = (
            select(*(_LEND_COLUMNS if lending else _PULL_COLUMNS))
            .where(messages.c.tenant_id == self.agent["tenant_id"], messages.c.seq > position, self.where)
            .order_by(messages.c.seq)
            .limit(limit)
        )
        return [dict(r) for r in self.conn.execute(stmt).mappings()]

    def count_between(self, low: int, high: int) -> int:
        """How many of the stream's messages in (low, high] are for this agent (not its own)."""
        params = {"tenant_id": self.agent["tenant_id"], "low": low, "high": high, "agent_id": self.agent["agent_id"]}
        if self.broadcasts:
            return int(_COUNT_BROADCASTS.scalar(self.conn, params))
        return int(self.conn.execute(_COUNT.where(self.where), params).scalar_one())

    def mine_among(self, seqs: list[int]) -> list[int]:
        """Which of these seqs are the stream's messages for this agent (not its own)."""
        stmt = select(messages.c.seq).where(
            messages.c.tenant_id == self.agent["tenant_id"], messages.c.seq.in_(seqs), self.where,
            messages.c.sender_id != self.agent["agent_id"],
        )
        return list(self.conn.execute(stmt).scalars())

    def between(self, low: int, high: int) -> list[dict[str, Any]]:
        """The stream's messages in (low, high], as an inbox row needs them."""
        stmt = select(*_PULL_COLUMNS).where(
            messages.c.tenant_id == self.agent["tenant_id"], messages.c.seq > low, messages.c.seq <= high, self.where
        )
        return [dict(r) for r in self.conn.execute(stmt).mappings()]

    def add_deliveries(self, found: list[dict[str, Any]], visible_at: datetime, delivery_count: int) -> None:
        """Inbox rows for the messages found (nobody receives its own broadcast); rows already there are kept."""
        agent_id = self.agent["agent_id"]
        mine = [
            {
                "agent_id": agent_id,
                "seq": r["seq"],
                "tenant_id": self.agent["tenant_id"],
                "priority": r["priority"],
                "subscription_id": self.subscription_id,
                "visible_at": visible_at,
                "delivery_count": delivery_count,
                "acked_at": None,
            }
            for r in found
            if r["sender_id"] != agent_id
        ]
        if mine:
            _deliveries_insert(self.conn.dialect.name).execute_many(self.conn, mine)


def _sources(conn: Connection, agent: dict[str, Any], kinds: tuple[str, ...] = ("broadcast", "topic")) -> list[_Source]:
    """The agent's shared streams of these message kinds: the tenant's broadcasts, then each topic subscription."""
    sources = [_Source(conn, agent, BROADCAST_STREAM)] if "broadcast" in kinds else []
    if "topic" in kinds:
        for sub in _SUBSCRIPTIONS.rows(conn, {"agent_id": agent["agent_id"]}):
            if sub["topics"]:
                sources.append(_Source(conn, agent, f"sub:{sub['subscription_id']}", sub["topics"], sub["created_at"]))
    return sources


def _one_reader(conn: Connection, agent_id: str) -> None:
    """Two transactions that move one agent's read positions (a receive, a stream's lend, on two replicas) must not
    both hand out what lies past the same position: on PostgreSQL the second waits for the first to commit."""
    serialize_appends(conn, f"read:{agent_id}")


def _by_stream(conn: Connection, agent: dict[str, Any], streams: set[str]) -> dict[str, _Source]:
    """The agent's shared streams among ``streams``, by name (subscriptions are looked up only if one is wanted)."""
    if not streams:
        return {}
    kinds = ("broadcast",) if streams == {BROADCAST_STREAM} else KINDS
    return {source.stream: source for source in _sources(conn, agent, kinds) if source.stream in streams}


def pull_shared(conn: Connection, agent: dict[str, Any], now: datetime) -> None:
    """Give the agent inbox rows for the broadcasts and subscribed topic messages its read positions have not passed
    (and for lent ranges that came back)."""
    _one_reader(conn, agent["agent_id"])
    reclaim(conn, agent, now)
    for source in _sources(conn, agent):
        position, stored = source.position()
        found = source.after(position, PULL_BATCH, lending=False)
        if found:
            source.add_deliveries(found, now, 0)
            _set_position(conn, agent["agent_id"], source.stream, found[-1]["seq"])
        elif not stored:
            _set_position(conn, agent["agent_id"], source.stream, position)


def lend(
    conn: Connection, agent: dict[str, Any], kinds: tuple[str, ...], limit: int, visibility: timedelta, now: datetime,
    known: Container[tuple[int, str | None]] = (),
) -> list[dict[str, Any]]:
    """Hand a live stream up to ``limit`` shared messages past its read positions, as rows shaped like
    ``messages.PENDING``'s (delivered once, marked ``lent``), recording one lent range per stream instead of an inbox
    row each. A message whose (seq, subscription_id) is ``known`` (rendered already) comes without its body."""
    agent_id = agent["agent_id"]
    _one_reader(conn, agent_id)
    lent: list[dict[str, Any]] = []
    until = now + visibility
    for source in _sources(conn, agent, kinds):
        if len(lent) >= limit:
            break
        position, stored = source.position()
        found = source.after(position, limit - len(lent), lending=True)
        if not found:
            if not stored:
                _set_position(conn, agent_id, source.stream, position)
            continue
        high = found[-1]["seq"]
        count = len(lent)
        for r in found:  # (fresh rows: marked in place)
            if r["sender_id"] != agent_id and (r["expires_at"] is None or r["expires_at"] > now):
                r |= {"delivery_count": 1, "subscription_id": source.subscription_id, "lent": True}
                lent.append(r)
        if len(lent) > count:
            _LEND.execute(conn, {
                "agent_id": agent_id, "stream": source.stream, "high": high, "low": position,
                "tenant_id": agent["tenant_id"], "visible_at": until,
            })
        _set_position(conn, agent_id, source.stream, high)
    unknown = [r["seq"] for r in lent if (r["seq"], r["subscription_id"]) not in known]
    if unknown:
        whole = {r["seq"]: r for r in whole_messages(conn, unknown)}
        for r in lent:
            if r["seq"] in whole:
                r |= {**whole[r["seq"]], "delivery_count": 1, "subscription_id": r["subscription_id"]}
    return lent


def _return(conn: Connection, agent: dict[str, Any], parts: list[tuple[dict[str, Any], int, datetime]]) -> None:
    """Turn parts of lent ranges into inbox rows, delivered once: for each (range, low, visible_at), its messages in
    (low, high], visible at ``visible_at``. The range's part below ``low``, if any, stays lent. A range of a stream
    that is gone (unsubscribed) just goes."""
    sources = _by_stream(conn, agent, {lent["stream"] for lent, _, _ in parts})
    for lent, low, visible_at in parts:
        source = sources.get(lent["stream"])
        if source is not None:
            source.add_deliveries(source.between(max(low, lent["low"]), lent["high"]), visible_at, 1)
        if low > lent["low"]:
            conn.execute(update(lent_ranges).where(*_key(lent)).values(high=low))
        else:
            conn.execute(delete(lent_ranges).where(*_key(lent)))


def _key(lent: dict[str, Any]) -> tuple[Any, ...]:
    return lent_ranges.c.agent_id == lent["agent_id"], lent_ranges.c.stream == lent["stream"], lent_ranges.c.high == lent["high"]


def _lent(conn: Connection, agent_id: str, *where: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(lent_ranges).where(lent_ranges.c.agent_id == agent_id, *where)).mappings()]


def reclaim(conn: Connection, agent: dict[str, Any], now: datetime) -> None:
    """Lent ranges whose visibility timeout ran out become inbox rows, visible now."""
    _return(conn, agent, [(lent, lent["low"], now) for lent in _LENT_DUE.rows(conn, {"agent_id": agent["agent_id"], "now": now})])


def reclaim_after(conn: Connection, agent: dict[str, Any], seq: int, now: datetime) -> None:
    """A stream resumes after message ``seq``: what was lent to the lost connection after it is due again at once."""
    _return(conn, agent, [(lent, seq, now) for lent in _lent(conn, agent["agent_id"], lent_ranges.c.high > seq)])


def ack_lent(conn: Connection, agent: dict[str, Any], seqs: list[int]) -> set[int]:
    """Ack, by seq, messages lent to the agent's streams: each range holding some is cut around them (the rest stays
    lent, hidden until the same time). Returns the seqs acked."""
    ranges = _lent(conn, agent["agent_id"])
    holding = [(lent, [s for s in seqs if lent["low"] < s <= lent["high"]]) for lent in ranges]
    holding = [(lent, inside) for lent, inside in holding if inside]
    if not holding:
        return set()
    sources = _by_stream(conn, agent, {lent["stream"] for lent, _ in holding})
    acked: set[int] = set()
    for lent, inside in holding:
        source = sources.get(lent["stream"])
        if source is None:
            continue
        theirs = sorted(source.mine_among(inside))
        if not theirs:
            continue
        conn.execute(delete(lent_ranges).where(*_key(lent)))
        edges = [lent["low"], *theirs, lent["high"] + 1]  # the pieces lie strictly between consecutive edges
        pieces = [
            {**lent, "low": low, "high": high - 1} for low, high in zip(edges, edges[1:]) if high - 1 > low
        ]
        if pieces:
            _LEND.execute_many(conn, pieces)
        acked.update(theirs)
    return acked


def ack_up_to(conn: Connection, agent: dict[str, Any], up_to: int) -> int:
    """Ack every lent message up to ``up_to``: ranges below it go, a range across it keeps its upper part. Returns
    how many messages that acked."""
    params = {"b_agent_id": agent["agent_id"], "up_to": up_to}
    below = _LENT_BELOW.rows(conn, params)
    if not below:
        return 0
    sources = _by_stream(conn, agent, {lent["stream"] for lent in below})
    acked = 0
    for lent in below:
        if (source := sources.get(lent["stream"])) is not None:
            acked += source.count_between(lent["low"], min(up_to, lent["high"]))
    _DROP_ACKED.execute(conn, params)
    _SHRINK_ACKED.execute(conn, params)
    return acked


def acked_while_lent(conn: Connection, agent: dict[str, Any], seqs: list[int]) -> set[int]:
    """Of these shared messages (in neither the inbox nor a lent range), those a read position of the agent passed
    since it could receive them: lent to a stream and acked up to a cursor there, so acking them again is a no-op."""
    passed: set[int] = set()
    for source in _sources(conn, agent) if seqs else []:
        position = _position(conn, agent["agent_id"], source.stream)
        if position is not None:
            passed.update(conn.execute(
                select(messages.c.seq).where(
                    messages.c.tenant_id == agent["tenant_id"], messages.c.seq.in_(seqs), messages.c.seq <= position, source.where,
                    messages.c.sender_id != agent["agent_id"], messages.c.created_at >= source.since,
                )
            ).scalars())
    return passed


def next_lent_visible(conn: Connection, agent_id: str, now: datetime) -> datetime | None:
    """When the agent's next lent range comes back, if one is out."""
    visible: datetime | None = _NEXT_LENT_VISIBLE.scalar(conn, {"agent_id": agent_id, "now": now})
    return visible


def subscribe(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    conn.execute(insert(subscriptions).values(**row))
    _set_position(conn, row["agent_id"], f"sub:{row['subscription_id']}", latest_of(conn, row["tenant_id"], "topic"))
    return row


def unsubscribe(conn: Connection, subscription_id: str, agent_scope: str | None, tenant_scope: str | None) -> None:
    """Drop a subscription with its read position and lent ranges."""
    stmt = delete(subscriptions).where(subscriptions.c.subscription_id == subscription_id)
    if agent_scope is not None:
        stmt = stmt.where(subscriptions.c.agent_id == agent_scope)
    if tenant_scope is not None:
        stmt = stmt.where(subscriptions.c.tenant_id == tenant_scope)
    if conn.execute(stmt).rowcount == 0:
        raise NotFound(f"no subscription '{subscription_id}'", details={"subscription_id": subscription_id})
    conn.execute(delete(read_positions).where(read_positions.c.stream == f"sub:{subscription_id}"))
    conn.execute(delete(lent_ranges).where(lent_ranges.c.stream == f"sub:{subscription_id}"))


def still_lent(seq: Any, tenant_id: Any) -> Any:
    """SQL: a message at ``seq`` of ``tenant_id`` lies in a lent range (retention must keep it)."""
    return (
        select(lent_ranges.c.high)
        .where(lent_ranges.c.tenant_id == tenant_id, lent_ranges.c.low < seq, lent_ranges.c.high >= seq)
        .exists()
    )

