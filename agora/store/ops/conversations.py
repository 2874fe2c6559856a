"""Conversations: the messages and tasks of a tenant that share a ``conversation_id``. ``touch`` keeps a row per
conversation as its turns are written (in their transaction); the rest reads them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, func, select, tuple_

from agora.core.ids import is_id

from ..base import defer
from ..schema import agents, conversation_participants, conversations, messages, task_output, tasks
from .dialect import upsert_insert

c = conversations.c
SUMMARY = 200  # characters of the first turn kept as the conversation's summary line


def words(value: Any) -> str:
    """The words of a turn's content or payload: its ``text`` (or ``message``, ``prompt``, an A2A message's text
    parts) if it has one, else the JSON itself; for a summary or a history line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "message", "prompt", "input", "question"):
            if key in value:
                return words(value[key])
        if isinstance(value.get("parts"), list):
            return " ".join(words(p) for p in value["parts"] if isinstance(p, dict) and "text" in p)
    return "" if value is None else str(value)


def agent(ref: str | None) -> str | None:
    """``ref`` if it is an agent's id (not a name, a key's label or 'system'): who a conversation's agents are."""
    return ref if ref and is_id(ref, "agent") else None


def of_task(row: dict[str, Any]) -> tuple[str, str, datetime, Any, list[str | None]]:
    """A task's turn as ``touch`` and ``turn_rows`` take it: its agents are its assignee and the agent that made it."""
    return row["tenant_id"], row["conversation_id"], row["created_at"], row["payload"], [agent(row["assignee"]), agent(row["created_by"])]


def touch(conn: Connection, tenant_id: str, conversation_id: str, at: datetime, content: Any, agent_ids: list[str | None]) -> None:
    """A turn of a conversation was written (in this transaction): count it, move its last activity, add its agents.
    Deferred to the operation's end, so the turns of one operation cost one statement per table."""
    defer(conn, _write, {
        "tenant_id": tenant_id, "conversation_id": conversation_id, "at": at, "summary": " ".join(words(content).split())[:SUMMARY],
        "agents": [a for a in agent_ids if a],
    })  # fmt: skip


def turn_rows(tenant_id: str, conversation_id: str, at: datetime, content: Any, agent_ids: list[str | None]) -> list[tuple[Table, list[dict[str, Any]]]]:
    """What ``touch`` writes for one turn, as rows of ``merging`` statements: for a write that is one statement of
    inserts (``inserts.insert_all``)."""
    conversation = {"tenant_id": tenant_id, "conversation_id": conversation_id, "summary": " ".join(words(content).split())[:SUMMARY],
                    "turns": 1, "started_at": at, "last_activity_at": at}  # fmt: skip
    agents_of = [{"tenant_id": tenant_id, "conversation_id": conversation_id, "agent_id": a} for a in dict.fromkeys(agent_ids) if a]
    return [(conversations, [conversation]), (conversation_participants, agents_of)]


def merging(dialect: str, table: Table) -> Any:
    """The INSERT of ``table``'s rows that merges them into those there: a conversation's turns added up, its last
    activity the later one, its summary the first turn's; a participant already there left alone."""
    stmt = upsert_insert(dialect, table)
    if table is conversation_participants:
        return stmt.on_conflict_do_nothing()
    later = func.max if dialect == "sqlite" else func.greatest
    return stmt.on_conflict_do_update(
        index_elements=["tenant_id", "conversation_id"],
        set_={
            "turns": c.turns + stmt.excluded.turns,
            "last_activity_at": later(c.last_activity_at, stmt.excluded.last_activity_at),
            "summary": func.coalesce(func.nullif(c.summary, ""), stmt.excluded.summary),
        },
    )


MERGED = (conversations, conversation_participants)  # the tables ``merging`` writes


def _write(conn: Connection, turns: list[dict[str, Any]]) -> None:
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for turn in turns:
        key = (turn["tenant_id"], turn["conversation_id"])
        if key not in merged:
            merged[key] = {"tenant_id": key[0], "conversation_id": key[1], "summary": turn["summary"], "turns": 0,
                           "started_at": turn["at"], "last_activity_at": turn["at"]}  # fmt: skip
        row = merged[key]
        row["turns"] += 1
        row["last_activity_at"] = max(row["last_activity_at"], turn["at"])
    dialect = conn.dialect.name
    conn.execute(merging(dialect, conversations), sorted(merged.values(), key=lambda r: (r["tenant_id"], r["conversation_id"])))  # one lock order
    agents_of = sorted({(t["tenant_id"], t["conversation_id"], a) for t in turns for a in t["agents"]})
    if agents_of:
        rows = [{"tenant_id": t, "conversation_id": cid, "agent_id": a} for t, cid, a in agents_of]
        conn.execute(merging(dialect, conversation_participants), rows)


def page(
    conn: Connection, tenant_id: str | None, agent_ids: list[str], before: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The conversations of a tenant (None: of every tenant), the last active first, those all of ``agent_ids`` took
    part in: ``limit`` + 1 rows, so the caller knows whether there is more."""
    stmt = select(conversations)
    if tenant_id is not None:
        stmt = stmt.where(c.tenant_id == tenant_id)
    for agent_id in agent_ids:
        stmt = stmt.where(_with_agent(agent_id))
    if before is not None:
        stmt = stmt.where(tuple_(c.last_activity_at, c.conversation_id) < tuple_(*before))
    stmt = stmt.order_by(c.last_activity_at.desc(), c.conversation_id.desc()).limit(limit + 1)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _with_agent(agent_id: str) -> Any:
    p = conversation_participants.c
    return (
        select(p.agent_id)
        .where(p.tenant_id == c.tenant_id, p.conversation_id == c.conversation_id, p.agent_id == agent_id)
        .exists()
    )


def get(conn: Connection, tenant_id: str, conversation_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(conversations).where(c.tenant_id == tenant_id, c.conversation_id == conversation_id)).mappings().first()
    return dict(row) if row else None


def participants(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The agents of each conversation, by (tenant, conversation id): id and name (an agent since removed, its id)."""
    if not keys:
        return {}
    p = conversation_participants.c
    rows = conn.execute(
        select(p.tenant_id, p.conversation_id, p.agent_id, agents.c.agent_name)
        .select_from(conversation_participants.outerjoin(agents, agents.c.agent_id == p.agent_id))
        .where(tuple_(p.tenant_id, p.conversation_id).in_(keys))
        .order_by(p.tenant_id, p.conversation_id, p.agent_id)
    ).mappings()
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        found.setdefault((r["tenant_id"], r["conversation_id"]), []).append({"agent_id": r["agent_id"], "agent_name": r["agent_name"]})
    return found


def turns(conn: Connection, tenant_id: str, conversation_id: str, limit: int, output_chars: int) -> list[dict[str, Any]]:
    """The conversation's last ``limit`` turns, oldest first: its messages and its tasks (each with the text its
    output holds, up to ``output_chars``), by the time they were made."""
    m = messages.c
    said = conn.execute(
        select(m.message_id, m.sender_id, m.recipient_id, m.message_type, m.content, m.context, m.created_at, m.seq)
        .where(m.tenant_id == tenant_id, m.conversation_id == conversation_id)
        .order_by(m.seq.desc())
        .limit(limit)
    ).mappings()
    t = tasks.c
    asked = conn.execute(
        select(t.task_id, t.task_type, t.status, t.assignee, t.claimed_by, t.created_by, t.payload, t.result, t.last_error, t.created_at, t.finished_at)
        .where(t.tenant_id == tenant_id, t.conversation_id == conversation_id)
        .order_by(t.created_at.desc())
        .limit(limit)
    ).mappings()
    found = [{"kind": "message", **r} for r in said] + [{"kind": "task", **r} for r in asked]
    found.sort(key=lambda r: (r["created_at"], r.get("seq") or 0))
    found = found[-limit:]
    outputs = _output_text([r["task_id"] for r in found if r["kind"] == "task"], output_chars, conn)
    for r in found:
        if r["kind"] == "task":
            r["output"] = outputs.get(r["task_id"], "")
    return found


def _output_text(task_ids: list[str], chars: int, conn: Connection) -> dict[str, str]:
    """The text chunks of each task's output, joined, the first ``chars`` of them."""
    if not task_ids:
        return {}
    o = task_output.c
    joined: dict[str, str] = {}
    rows = conn.execute(
        select(o.task_id, o.text).where(o.task_id.in_(task_ids), o.kind == "text").order_by(o.task_id, o.seq)
    ).mappings()
    for r in rows:
        so_far = joined.get(r["task_id"], "")
        if len(so_far) < chars:
            joined[r["task_id"]] = (so_far + (r["text"] or ""))[:chars]
    return joined


def purge(conn: Connection, before: datetime, limit: int) -> int:
    """Conversations idle since before ``before``, the oldest ``limit`` of them, with their participants."""
    doomed = [
        (r.tenant_id, r.conversation_id)
        for r in conn.execute(select(c.tenant_id, c.conversation_id).where(c.last_activity_at < before).order_by(c.last_activity_at).limit(limit))
    ]
    if not doomed:
        return 0
    p = conversation_participants.c
    conn.execute(delete(conversation_participants).where(tuple_(p.tenant_id, p.conversation_id).in_(doomed)))
    return conn.execute(delete(conversations).where(tuple_(c.tenant_id, c.conversation_id).in_(doomed))).rowcount


def count_idle(conn: Connection, before: datetime) -> int:
    return int(conn.execute(select(func.count()).select_from(conversations).where(c.last_activity_at < before)).scalar_one())
