"""Agents and their capability index."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)

from agora.core.ids import is_id, new_id
from ..search_documents import agent_document
from agora_sdk.errors import InvalidArgument, NotFound, PermissionDenied

from ..base import point_read
from ..prepared import Prepared
from ..schema import agent_capabilities, agents, lent_ranges, market_instances, market_listings, tasks
from . import search as search_ops
from .dialect import one_of, upsert_insert
from .pagination import decode_cursor, decode_position, page


def search_text(name: str, description: str, capabilities: list[str]) -> str:
    return " ".join([name, description, *capabilities]).lower()


# Every column but those that exist only to be searched.
_RETURNED = [c for c in agents.c if c.name not in ("search_text", "a2a_access", "a2a_token", "a2a_card_url")]


def _scoped(stmt: Any, tenant_scope: str | None) -> Any:
    return stmt if tenant_scope is None else stmt.where(agents.c.tenant_id == tenant_scope)


@lru_cache(maxsize=4)
def _resolve_statement(by_id: bool, scoped: bool) -> Any:
    """Built once per shape (by id or name, in a tenant or not): a lookup only binds its values."""
    column = agents.c.agent_id if by_id else agents.c.agent_name
    stmt = select(agents).where(column == bindparam("ref"))
    if scoped:
        stmt = stmt.where(agents.c.tenant_id == bindparam("tenant_id"))
    return Prepared(stmt.limit(2))


@point_read
def resolve(conn: Connection, tenant_scope: str | None, ref: str) -> dict[str, Any]:
    """Find an agent by id or unique name among those the caller may see; 404 otherwise."""
    stmt = _resolve_statement(is_id(ref, "agent"), tenant_scope is not None)
    rows = stmt.rows(conn, {"ref": ref, "tenant_id": tenant_scope})
    if not rows:
        raise NotFound(f"no agent '{ref}'", details={"agent": ref})
    if len(rows) > 1:
        raise InvalidArgument(
            f"agent name '{ref}' exists in several tenants; use the agent id",
            details={"agent": ref, "agent_ids": [r["agent_id"] for r in rows]},
        )
    return rows[0]


@lru_cache(maxsize=2)
def _insert_if_new(dialect_name: str) -> Any:
    """INSERT … ON CONFLICT (tenant, name) DO NOTHING RETURNING agent_id, built once per engine."""
    stmt = upsert_insert(dialect_name, agents).on_conflict_do_nothing(index_elements=["tenant_id", "agent_name"])
    return stmt.returning(agents.c.agent_id)


_INSERT_CAPABILITIES = insert(agent_capabilities)


def _set_capabilities(conn: Connection, agent_id: str, tenant_id: str, capabilities: list[str], *, replace: bool) -> None:
    if replace:
        conn.execute(delete(agent_capabilities).where(agent_capabilities.c.agent_id == agent_id))
    if capabilities:
        conn.execute(
            _INSERT_CAPABILITIES,
            [{"agent_id": agent_id, "capability": c, "tenant_id": tenant_id} for c in capabilities],
        )


def upsert(
    conn: Connection, tenant_id: str, fields: dict[str, Any], now: datetime, acting_agent_id: str | None
) -> tuple[dict[str, Any], bool]:
    """Create the agent, or update the one with that name in the tenant. Returns (row, created).

    ``acting_agent_id`` is set when an agent token registers: it may only re-register itself.
    """
    name = fields["agent_name"]
    values = {
        **fields,
        "search_text": search_text(name, fields["description"], fields["capabilities"]),
        "a2a_access": (fields.get("a2a") or {}).get("access"),
        "updated_at": now,
    }
    if acting_agent_id is None:
        row = {
            **values,
            "agent_id": new_id("agent"),
            "tenant_id": tenant_id,
            "status": "active",
            "registered_at": now,
            "last_heartbeat": None,
        }
        if conn.execute(_insert_if_new(conn.dialect.name), row).scalar() is not None:
            _set_capabilities(conn, row["agent_id"], tenant_id, fields["capabilities"], replace=False)
            search_ops.put(conn, agent_document(row, now))
            return row, True
    existing = resolve(conn, tenant_id, name) if acting_agent_id is None else _own(conn, tenant_id, name, acting_agent_id)
    changes = dict(values)
    if existing["status"] in ("offline", "inactive"):
        # registering again is a sign of life, recorded as one: else presence would find the agent silent since its
        # last heartbeat and take it offline again at its next pass
        changes["status"] = "active"
        changes["last_heartbeat"] = now
    if acting_agent_id is not None:
        changes["last_heartbeat"] = now  # the agent itself, with its own token: it is there now
    conn.execute(update(agents).where(agents.c.agent_id == existing["agent_id"]).values(**changes))
    _set_capabilities(conn, existing["agent_id"], tenant_id, fields["capabilities"], replace=True)
    updated = {**existing, **changes}
    search_ops.put(conn, agent_document(updated, now))
    return updated, False


def _own(conn: Connection, tenant_id: str, name: str, acting_agent_id: str) -> dict[str, Any]:
    row = resolve(conn, tenant_id, acting_agent_id)
    if row["agent_name"] != name:
        raise PermissionDenied(
            "an agent token can only re-register its own agent",
            details={"agent": acting_agent_id, "agent_name": name},
        )
    return row


def modify(conn: Connection, agent_id: str, changes: dict[str, Any], now: datetime) -> dict[str, Any]:
    row = resolve(conn, None, agent_id)
    merged = {**row, **changes}
    if "capabilities" in changes:
        _set_capabilities(conn, agent_id, row["tenant_id"], changes["capabilities"], replace=True)
    if {"capabilities", "description"} & changes.keys():
        changes["search_text"] = search_text(merged["agent_name"], merged["description"], merged["capabilities"])
    if "a2a" in changes:
        changes["a2a_access"] = (changes["a2a"] or {}).get("access")
    conn.execute(update(agents).where(agents.c.agent_id == agent_id).values(**changes, updated_at=now))
    updated = resolve(conn, None, agent_id)
    search_ops.put(conn, agent_document(updated, now))
    return updated


PRESENT = ("active", "busy", "error", "inactive")  # what silence turns into "offline" (paused/terminated are an admin's)


def heartbeat(conn: Connection, agent_id: str, status: str | None, now: datetime) -> dict[str, Any]:
    """A sign of life: an offline agent that heartbeats without saying more is active again. It is recorded for a
    paused or terminated agent too, whose status only an administrator's override changes."""
    held = agents.c.status.in_(("paused", "terminated"))
    said = status if status is not None else case((agents.c.status == "offline", "active"), else_=agents.c.status)
    conn.execute(
        update(agents)
        .where(agents.c.agent_id == agent_id)
        .values(last_heartbeat=now, status=case((held, agents.c.status), else_=said))
    )
    return resolve(conn, None, agent_id)


def touch_many(conn: Connection, agent_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    """``heartbeat`` for many agents at once (those that are gone are skipped): the ones that were offline, as they
    were (they are active now)."""
    these = one_of(conn.dialect.name, agents.c.agent_id, "agent_ids")
    back = conn.execute(
        select(agents.c.agent_id, agents.c.agent_name, agents.c.tenant_id, agents.c.status).where(these, agents.c.status == "offline"),
        {"agent_ids": agent_ids},
    ).mappings().all()
    awake = case((agents.c.status == "offline", "active"), else_=agents.c.status)
    conn.execute(update(agents).where(these).values(last_heartbeat=now, status=awake), {"agent_ids": agent_ids})
    return [dict(r) for r in back]


def _silent(silent_since: datetime) -> ColumnElement[bool]:
    return and_(agents.c.status.in_(PRESENT), func.coalesce(agents.c.last_heartbeat, agents.c.registered_at) < silent_since)


def silent(conn: Connection, silent_since: datetime) -> list[str]:
    """The agents with no sign of life since ``silent_since`` (every agent is looked at: a read, which on SQLite
    holds up no writer, where it took the one writer ~40 ms every few seconds at 100,000 agents)."""
    return list(conn.execute(select(agents.c.agent_id).where(_silent(silent_since))).scalars())


def mark_silent_offline(conn: Connection, agent_ids: list[str], silent_since: datetime) -> list[dict[str, Any]]:
    """Those of ``agent_ids`` (``silent``'s) still without a sign of life since ``silent_since`` go offline; returns
    them with their previous status."""
    if not agent_ids:
        return []
    # One bound list, not a parameter per id: after a long outage every agent may be silent at once.
    still, ids = and_(one_of(conn.dialect.name, agents.c.agent_id, "agent_ids"), _silent(silent_since)), {"agent_ids": agent_ids}
    columns = (agents.c.agent_id, agents.c.agent_name, agents.c.tenant_id, agents.c.status)
    before = {r["agent_id"]: dict(r) for r in conn.execute(select(*columns).where(still), ids).mappings()}
    if not before:
        return []
    changed = conn.execute(update(agents).where(still).values(status="offline").returning(agents.c.agent_id), ids).scalars()
    return [before[agent_id] for agent_id in changed]


def remove(conn: Connection, agent_id: str) -> None:
    conn.execute(delete(agent_capabilities).where(agent_capabilities.c.agent_id == agent_id))
    conn.execute(delete(lent_ranges).where(lent_ranges.c.agent_id == agent_id))  # else they keep messages from retention
    conn.execute(delete(agents).where(agents.c.agent_id == agent_id))
    search_ops.remove(conn, "agent", agent_id)


def set_status(conn: Connection, tenant_scope: str | None, agent_ids: list[str] | None, status: str) -> int:
    stmt = update(agents).values(status=status)
    if agent_ids is not None:
        stmt = stmt.where(agents.c.agent_id.in_(agent_ids))
    return conn.execute(_scoped(stmt, tenant_scope)).rowcount


_WORD = re.compile(r"[\w.:/-]+")


def query(
    conn: Connection,
    tenant_scope: str | None,
    *,
    all_of: list[str],
    any_of: list[str],
    status: str | None,
    service_tier: str | None,
    text: str | None,
    limit: int,
    cursor: str | None,
    a2a_access: tuple[str, ...] = (),
    sort: str = "id",
    min_rating: float | None = None,
    min_reputation: float | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Agents by capability (all of, any of), status, tier and words; ``a2a_access``: only A2A fronts of those kinds;
    ``min_rating``/``min_reputation``: only marketplace agents whose listing stands so well. In ``sort`` order (a key
    of ``SORTS``, or best first by ``rating`` or ``reputation``), a page at a time from ``cursor``."""
    words = (_WORD.findall(text.lower()) or [text.lower()]) if text else []
    order = SORTS.get(sort, (sort, "agent_id"))
    after = (decode_cursor(cursor),) if len(order) == 1 and cursor else decode_position(cursor, len(order))
    if after is not None and sort in BEST:
        after = (_number(after[0]), after[1])
    stmt = _query_statement(
        tenant_scope is not None, bool(all_of), bool(any_of), bool(status), bool(service_tier), len(words), bool(after), bool(a2a_access), sort,
        min_rating is not None, min_reputation is not None,
    )  # fmt: skip
    params: dict[str, Any] = {
        "tenant_id": tenant_scope, "all_of": all_of, "needed": len(all_of), "any_of": any_of, "status": status,
        "service_tier": service_tier, "limit": limit + 1, "a2a_access": list(a2a_access), "min_rating": min_rating,
        "min_reputation": min_reputation, **{f"word_{i}": _like_escaped(w) for i, w in enumerate(words)},
        **{f"after_{i}": value for i, value in enumerate(after or ())},
    }  # fmt: skip
    rows = conn.execute(stmt, params).mappings().all()
    if len(order) == 1:
        return page([dict(r) for r in rows], limit, lambda r: r["agent_id"])
    if sort in BEST:
        return page([dict(r) for r in rows], limit, lambda r: (repr(r[sort]), r["agent_id"]))
    return page([dict(r) for r in rows], limit, lambda r: tuple(str(r[c]) for c in order))


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"}) from None


def standing(conn: Connection, agent_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Of these agents, the marketplace instances' agents: the listing each runs, with its rating and reputation."""
    if not agent_ids:
        return {}
    stmt = select(market_instances.c.agent_id, *_STANDING).select_from(_RUNS).where(market_instances.c.agent_id.in_(agent_ids))
    return {r["agent_id"]: {k: r[k] for k in _STANDING_KEYS} for r in conn.execute(stmt).mappings()}


# An instance's agent and the listing it runs, while listed: one the publisher withdrew has no standing to show (and
# under row-level security a buyer could not read it), the same for everyone on either engine.
_RUNS = market_instances.join(
    market_listings, and_(market_listings.c.listing_id == market_instances.c.listing_id, market_listings.c.status == "listed")
)
_STANDING = (market_listings.c.listing_id, market_listings.c.rating, market_listings.c.rating_count, market_listings.c.reputation)
_STANDING_KEYS = tuple(c.name for c in _STANDING)
BEST = ("rating", "reputation")  # sorts best first, by the listing's figure


def rated_agents(min_rating: float | None, min_reputation: float | None) -> Any:
    """The agents of marketplace instances whose listing stands at least so well (a subquery of agent ids)."""
    stmt = select(market_instances.c.agent_id).select_from(_RUNS)
    if min_rating is not None:
        stmt = stmt.where(market_listings.c.rating >= min_rating)
    if min_reputation is not None:
        stmt = stmt.where(market_listings.c.reputation >= min_reputation)
    return stmt


# The orders agents are listed in: their columns, the agent id last (unique, so a page ends at one place).
SORTS = {"id": ("agent_id",), "name": ("agent_name", "agent_id"), "status": ("status", "agent_name", "agent_id")}


def by_ids(conn: Connection, agent_ids: list[str]) -> list[dict[str, Any]]:
    """The agents of ``agent_ids`` that exist, as queries return them (any order)."""
    if not agent_ids:
        return []
    return [dict(r) for r in conn.execute(select(*_RETURNED).where(agents.c.agent_id.in_(agent_ids))).mappings()]


def loads(conn: Connection, agent_ids: list[str]) -> dict[str, int]:
    """Tasks in progress per agent, of these agents."""
    stmt = (
        select(tasks.c.claimed_by, func.count())
        .where(tasks.c.claimed_by.in_(agent_ids), tasks.c.status == "in_progress")
        .group_by(tasks.c.claimed_by)
    )
    return {agent_id: n for agent_id, n in conn.execute(stmt).all()}


def _like_escaped(word: str) -> str:
    """A word matched literally inside LIKE (escape character '/'), as autoescape would for a literal."""
    return word.replace("/", "//").replace("%", "/%").replace("_", "/_")


@lru_cache(maxsize=256)
def _query_statement(
    scoped: bool, all_of: bool, any_of: bool, status: bool, tier: bool, words: int, after: bool, a2a: bool, sort: str,
    min_rating: bool = False, min_reputation: bool = False,
) -> Any:  # fmt: skip
    """The agent search for one combination of filters, built once: a call only binds its values."""
    caps = agent_capabilities.c
    rated = min_rating or min_reputation or sort in BEST
    stmt = select(*_RETURNED, *(_STANDING[1:] if sort in BEST else ()))
    if rated:
        stmt = stmt.select_from(agents.join(_RUNS, market_instances.c.agent_id == agents.c.agent_id))
    if min_rating:
        stmt = stmt.where(market_listings.c.rating >= bindparam("min_rating"))
    if min_reputation:
        stmt = stmt.where(market_listings.c.reputation >= bindparam("min_reputation"))
    cap_scope = []
    if scoped:
        stmt = stmt.where(agents.c.tenant_id == bindparam("tenant_id"))
        cap_scope = [caps.tenant_id == bindparam("tenant_id")]
    if all_of:
        having_all = (
            select(caps.agent_id)
            .where(caps.capability.in_(bindparam("all_of", expanding=True)), *cap_scope)
            .group_by(caps.agent_id)
            .having(func.count() == bindparam("needed"))
        )
        stmt = stmt.where(agents.c.agent_id.in_(having_all))
    if any_of:
        chosen = select(caps.agent_id).where(caps.capability.in_(bindparam("any_of", expanding=True)), *cap_scope)
        stmt = stmt.where(agents.c.agent_id.in_(chosen))
    if status:
        stmt = stmt.where(agents.c.status == bindparam("status"))
    if tier:
        stmt = stmt.where(agents.c.service_tier == bindparam("service_tier"))
    for i in range(words):
        stmt = stmt.where(agents.c.search_text.contains(bindparam(f"word_{i}"), escape="/"))
    if a2a:
        stmt = stmt.where(agents.c.a2a_access.in_(bindparam("a2a_access", expanding=True)))
    if sort in BEST:
        best, last = market_listings.c[sort], agents.c.agent_id
        if after:
            stmt = stmt.where(or_(best < bindparam("after_0"), and_(best == bindparam("after_0"), last < bindparam("after_1"))))
        return stmt.order_by(best.desc(), last.desc()).limit(bindparam("limit"))
    order = [agents.c[name] for name in SORTS[sort]]
    if after:
        stmt = stmt.where(tuple_(*order) > tuple_(*(bindparam(f"after_{i}") for i in range(len(order)))))
    return stmt.order_by(*order).limit(bindparam("limit"))


def counts(conn: Connection, tenant_scope: str | None, min_rating: float | None = None, min_reputation: float | None = None) -> dict[str, dict[str, int]]:
    """Agents by status, tier and capability, and marketplace agents by whole stars of their listing's rating; only
    those whose listing stands at least so well when ``min_rating`` or ``min_reputation`` is given."""
    rated = None if min_rating is None and min_reputation is None else rated_agents(min_rating, min_reputation)

    def narrowed(stmt: Any, agent_id: Any) -> Any:
        return stmt if rated is None else stmt.where(agent_id.in_(rated))

    by_status = narrowed(_scoped(select(agents.c.status, func.count()).group_by(agents.c.status), tenant_scope), agents.c.agent_id)
    by_tier = narrowed(_scoped(select(agents.c.service_tier, func.count()).group_by(agents.c.service_tier), tenant_scope), agents.c.agent_id)
    caps = agent_capabilities.c
    by_cap = narrowed(select(caps.capability, func.count()).group_by(caps.capability), caps.agent_id)
    if tenant_scope is not None:
        by_cap = by_cap.where(caps.tenant_id == tenant_scope)
    stars = case(*((market_listings.c.rating >= n, n) for n in (5, 4, 3, 2)), else_=1)  # floor(): not in every SQLite
    by_stars = select(stars, func.count()).select_from(_RUNS.join(agents, agents.c.agent_id == market_instances.c.agent_id)).group_by(stars)
    by_stars = narrowed(_scoped(by_stars, tenant_scope), agents.c.agent_id)
    return {
        "by_status": {k: v for k, v in conn.execute(by_status).all()},
        "by_tier": {k: v for k, v in conn.execute(by_tier).all()},
        "by_capability": {k: v for k, v in conn.execute(by_cap).all()},
        "by_rating": {str(int(k)): v for k, v in conn.execute(by_stars).all()},
    }


def remote(conn: Connection) -> list[dict[str, Any]]:
    """Every agent that stands for a remote A2A agent (the bridge does their work), with its token."""
    stmt = select(agents).where(agents.c.a2a_card_url.is_not(None), agents.c.status.not_in(("terminated",))).order_by(agents.c.agent_id)
    return [dict(r) for r in conn.execute(stmt).mappings()]
