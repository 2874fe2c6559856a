"""Marketplace rows: listings, hosting nodes, instances, and their append-only usage periods."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, insert, or_, select, update

from agora.core.billing import cost, micros_between, month_of, split_by_month, to_millionths
from agora.core.ids import is_id, new_id
from ..search_documents import listing_document
from agora_sdk.errors import Conflict, InvalidArgument, NotFound

from ..prepared import Prepared
from ..schema import (
    agents,
    hosting_nodes,
    market_instances,
    market_listings,
    market_usage,
    tasks,
)
from . import credits as credit_ops
from . import search as search_ops
from .dialect import one_of, one_of_words, seconds_between
from .pagination import decode_cursor, decode_position, page

LIVE = ("starting", "running", "paused", "stopping")  # instances that hold a place on a node


def _one(rows: list[Any], what: str, ref: str) -> dict[str, Any]:
    if not rows:
        raise NotFound(f"no {what} '{ref}'", details={what: ref})
    if len(rows) > 1:
        raise InvalidArgument(f"several {what}s are named '{ref}'; use the id", details={what: ref})
    return dict(rows[0])


# -- listings ---------------------------------------------------------------------------------------------------------


def publish(conn: Connection, tenant_id: str, fields: dict[str, Any], now: datetime) -> tuple[dict[str, Any], bool]:
    """Create the listing, or make the next version of the caller's listing of that name. Returns (row, created)."""
    existing = conn.execute(
        select(market_listings).where(market_listings.c.tenant_id == tenant_id, market_listings.c.agent_name == fields["agent_name"])
    ).mappings().first()
    if existing is None:
        row = {**fields, "listing_id": new_id("lst"), "tenant_id": tenant_id, "version": 1, "status": "listed",
               "created_at": now, "updated_at": now}  # fmt: skip
        conn.execute(insert(market_listings).values(**row))
        search_ops.put(conn, listing_document(row, now))
        return row, True
    changes = {**fields, "version": existing["version"] + 1, "status": "listed", "updated_at": now}
    conn.execute(update(market_listings).where(market_listings.c.listing_id == existing["listing_id"]).values(**changes))
    updated = {**existing, **changes}
    search_ops.put(conn, listing_document(updated, now))
    return updated, False


def listing(conn: Connection, ref: str, tenant_id: str | None, *, listed_only: bool = True, sees_all: bool = False) -> dict[str, Any]:
    """A listing by id, or by name: the caller's own of that name, else the one listed name of every publisher.
    A listing taken off the marketplace is seen by its publisher (tenant ``tenant_id``), by a tenant that has run it
    and, with ``sees_all``, the admin; to anyone else it is not there, by the same 404 as a listing that never was."""
    if is_id(ref, "lst"):
        rows = conn.execute(select(market_listings).where(market_listings.c.listing_id == ref)).mappings().all()
    else:
        named = select(market_listings).where(market_listings.c.agent_name == ref)
        rows = conn.execute(named.where(market_listings.c.tenant_id == tenant_id)).mappings().all() if tenant_id else []
        if not rows:
            rows = conn.execute(named.where(market_listings.c.status == "listed")).mappings().all()
    visible = [r for r in rows if sees_all or r["status"] == "listed" or r["tenant_id"] == tenant_id or _has_run(conn, r, tenant_id)]
    found = _one(visible, "listing", ref)
    if listed_only and found["status"] != "listed":
        raise NotFound(f"listing '{ref}' is no longer listed", details={"listing": ref})
    return found


def _has_run(conn: Connection, listing_row: Any, tenant_id: str | None) -> bool:
    ran = select(market_instances.c.instance_id).where(
        market_instances.c.listing_id == listing_row["listing_id"], market_instances.c.tenant_id == tenant_id
    )
    return tenant_id is not None and conn.execute(ran.limit(1)).first() is not None


def discover(
    conn: Connection, category: str | None, words: list[str], limit: int, cursor: str | None = None, *,
    min_rating: float | None = None, min_reputation: float | None = None, best: str | None = None,
) -> tuple[list[dict[str, Any]], int, str | None]:  # fmt: skip
    """A page of listed listings by name (then id), or the ``best`` by ``rating`` or ``reputation`` first (then the
    newest id), the number of all that match, and the cursor of the next page (keyset: after the listing the cursor
    names, or the position it gives)."""
    stmt = select(market_listings).where(market_listings.c.status == "listed")
    if category:
        stmt = stmt.where(market_listings.c.category == category)
    for word in words:
        stmt = stmt.where(market_listings.c.search_text.contains(word.lower(), autoescape=True))
    if min_rating is not None:
        stmt = stmt.where(market_listings.c.rating >= min_rating)
    if min_reputation is not None:
        stmt = stmt.where(market_listings.c.reputation >= min_reputation)
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    if best is not None:
        found, next_cursor = _best_page(conn, stmt, market_listings.c[best], limit, cursor)
        return found, total, next_cursor
    after = decode_cursor(cursor)
    if after is not None:
        pivot = select(market_listings.c.agent_name).where(market_listings.c.listing_id == after).scalar_subquery()
        stmt = stmt.where(
            or_(market_listings.c.agent_name > pivot, and_(market_listings.c.agent_name == pivot, market_listings.c.listing_id > after))
        )
    rows = conn.execute(stmt.order_by(market_listings.c.agent_name, market_listings.c.listing_id).limit(limit + 1)).mappings()
    found, next_cursor = page([dict(r) for r in rows], limit, lambda r: r["listing_id"])
    return found, total, next_cursor


def _best_page(conn: Connection, stmt: Any, column: Any, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Highest ``column`` first, then the newest id (keyset on both: the cursor carries the last row's)."""
    after = decode_position(cursor, 2)
    if after is not None:
        try:
            value = float(after[0])
        except ValueError:
            raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"}) from None
        stmt = stmt.where(or_(column < value, and_(column == value, market_listings.c.listing_id < after[1])))
    rows = conn.execute(stmt.order_by(column.desc(), market_listings.c.listing_id.desc()).limit(limit + 1)).mappings()
    return page([dict(r) for r in rows], limit, lambda r: (repr(r[column.name]), r["listing_id"]))


@lru_cache(maxsize=2)
def _standing_statement(dialect: str) -> Prepared:
    c = market_listings.c
    return Prepared(select(c.listing_id, c.rating, c.reputation).where(one_of(dialect, c.listing_id, "ids")))


def standing(conn: Connection, listing_ids: list[str]) -> dict[str, tuple[float, float]]:
    """(rating, reputation) of each of these listings the caller may read: what a search filters and sorts by, for
    its hundreds of candidates in one prepared statement."""
    if not listing_ids:
        return {}
    return {r["listing_id"]: (r["rating"], r["reputation"]) for r in _standing_statement(conn.dialect.name).rows(conn, {"ids": listing_ids})}


def listings_by_id(conn: Connection, listing_ids: list[str]) -> list[dict[str, Any]]:
    if not listing_ids:
        return []
    return [dict(r) for r in conn.execute(select(market_listings).where(market_listings.c.listing_id.in_(listing_ids))).mappings()]


def set_listing_status(conn: Connection, listing_id: str, status: str, now: datetime) -> None:
    conn.execute(update(market_listings).where(market_listings.c.listing_id == listing_id).values(status=status, updated_at=now))
    search_ops.set_public(conn, "listing", listing_id, status == "listed", now)


@lru_cache(maxsize=2)
def _instance_counts_statement(dialect: str) -> Prepared:
    live = one_of_words(market_instances.c.status, LIVE)
    own = live & (market_instances.c.tenant_id == bindparam("tenant_id"))
    return Prepared(
        select(
            market_instances.c.listing_id,
            func.count().label("total"),
            func.sum(_as_int(live)).label("live"),
            func.sum(_as_int(own)).label("own"),
        )
        .where(one_of(dialect, market_instances.c.listing_id, "ids"))
        .group_by(market_instances.c.listing_id)
    )


def instance_counts(conn: Connection, listing_ids: list[str], tenant_id: str | None) -> dict[str, dict[str, int]]:
    """Per listing: live instances, the caller's live ones, and every instance ever made."""
    rows = _instance_counts_statement(conn.dialect.name).rows(conn, {"ids": listing_ids, "tenant_id": tenant_id})
    return {r["listing_id"]: {"total": r["total"], "live": int(r["live"] or 0), "own": int(r["own"] or 0)} for r in rows}


def _as_int(condition: Any) -> Any:
    return case((condition, 1), else_=0)


@lru_cache(maxsize=2)
def _performance_statements(dialect: str) -> tuple[Prepared, Prepared, Prepared]:
    """``performance``'s three reads, built and compiled once per engine; the listings are one bound list, ``ids``."""
    done = tasks.c.status == "completed"
    finished = (
        select(
            market_instances.c.listing_id,
            func.sum(_as_int(done)).label("completed"),
            func.sum(_as_int(~done)).label("failed"),
            func.avg(case((done, seconds_between(dialect, tasks.c.started_at, tasks.c.finished_at)))).label("mean"),
        )
        .join(tasks, tasks.c.claimed_by == market_instances.c.agent_id)
        .where(one_of(dialect, market_instances.c.listing_id, "ids"), one_of_words(tasks.c.status, ("completed", "failed", "dead_letter")))
        .group_by(market_instances.c.listing_id)
    )
    closed = (
        select(market_usage.c.listing_id, market_usage.c.state, func.sum(market_usage.c.micros).label("micros"))
        .where(one_of(dialect, market_usage.c.listing_id, "ids"), one_of_words(market_usage.c.state, ("running", "down")))
        .group_by(market_usage.c.listing_id, market_usage.c.state)
    )
    opened = select(market_instances.c.listing_id, market_instances.c.period_state, market_instances.c.period_started_at).where(
        one_of(dialect, market_instances.c.listing_id, "ids"), one_of_words(market_instances.c.period_state, ("running", "down"))
    )
    return Prepared(finished), Prepared(closed), Prepared(opened)


def performance(conn: Connection, listing_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per listing, from its instances' records: finished tasks (completed, failed) with the mean seconds from claim to
    completion, closed running and down microseconds, and the open periods (added up by the caller at its ``now``).
    A search reads it for its hundreds of candidates: prepared statements, one bound list of ids each."""
    figures: dict[str, dict[str, Any]] = {
        i: {"completed": 0, "failed": 0, "mean_seconds": None, "running": 0, "down": 0, "open": []} for i in listing_ids
    }
    finished, closed, opened = _performance_statements(conn.dialect.name)
    ids = {"ids": listing_ids}
    for r in finished.rows(conn, ids):
        figures[r["listing_id"]].update(completed=int(r["completed"] or 0), failed=int(r["failed"] or 0), mean_seconds=r["mean"])
    for r in closed.rows(conn, ids):
        figures[r["listing_id"]][r["state"]] = int(r["micros"] or 0)
    for r in opened.rows(conn, ids):
        figures[r["listing_id"]]["open"].append((r["period_state"], r["period_started_at"]))
    return figures


# -- hosting nodes ----------------------------------------------------------------------------------------------------


def node_by_name(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(hosting_nodes).where(hosting_nodes.c.name == name)).mappings().first()
    return dict(row) if row else None


def save_node(conn: Connection, row: dict[str, Any]) -> None:
    if conn.execute(update(hosting_nodes).where(hosting_nodes.c.node_id == row["node_id"]).values(**row)).rowcount == 0:
        conn.execute(insert(hosting_nodes).values(**row))


def lock_placement(conn: Connection) -> None:
    """Serialise placements (PostgreSQL; SQLite's one writer already does): two replicas creating instances at once
    must not both take the last place on a node, or the last of a listing's max_instances."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(hosting_nodes.c.node_id).with_for_update())


def nodes(conn: Connection) -> list[dict[str, Any]]:
    """Every node with its agent's status and heartbeat and what its live instances hold."""
    held = (
        select(
            market_instances.c.node_id,
            func.count().label("instances"),
            func.sum(market_instances.c.cpu_reserved).label("used_cpu"),
            func.sum(market_instances.c.memory_reserved_mb).label("used_memory_mb"),
        )
        .where(market_instances.c.status.in_(LIVE))
        .group_by(market_instances.c.node_id)
        .subquery()
    )
    stmt = (
        select(hosting_nodes, agents.c.status, agents.c.last_heartbeat, held.c.instances, held.c.used_cpu, held.c.used_memory_mb)
        .join(agents, agents.c.agent_id == hosting_nodes.c.agent_id)
        .outerjoin(held, held.c.node_id == hosting_nodes.c.node_id)
        .order_by(hosting_nodes.c.name)
    )
    return [
        {**r, "instances": r["instances"] or 0, "used_cpu": float(r["used_cpu"] or 0), "used_memory_mb": int(r["used_memory_mb"] or 0)}
        for r in conn.execute(stmt).mappings()
    ]


def node(conn: Connection, node_id: str) -> dict[str, Any]:
    row = conn.execute(select(hosting_nodes).where(hosting_nodes.c.node_id == node_id)).mappings().first()
    if row is None:
        raise NotFound(f"no hosting node '{node_id}'", details={"node": node_id})
    return dict(row)


def node_of_agent(conn: Connection, agent_id: str | None) -> dict[str, Any] | None:
    row = conn.execute(select(hosting_nodes).where(hosting_nodes.c.agent_id == agent_id)).mappings().first()
    return dict(row) if row else None


# -- instances --------------------------------------------------------------------------------------------------------


def insert_instance(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(market_instances).values(**row))


def instance(conn: Connection, instance_id: str, tenant_scope: str | None, *, lock: bool = False) -> dict[str, Any]:
    """One instance (of the tenant, if scoped); ``lock``: held until the transaction ends, for a read-then-write
    (a node's sample and its 'running' report must not overwrite each other)."""
    stmt = select(market_instances).where(market_instances.c.instance_id == instance_id)
    if lock:
        stmt = stmt.with_for_update()
    if tenant_scope is not None:
        stmt = stmt.where(market_instances.c.tenant_id == tenant_scope)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise no_instance(instance_id)
    return dict(row)


def no_instance(instance_id: str) -> NotFound:
    """The one answer for an instance that is not there *or not the caller's*: the two must not be told apart."""
    return NotFound(f"no instance '{instance_id}'", details={"instance_id": instance_id})


_OF_AGENT = Prepared(select(market_instances).where(market_instances.c.agent_id == bindparam("agent_id")))


def instance_of_agent(conn: Connection, agent_id: str) -> dict[str, Any] | None:
    return _OF_AGENT.first(conn, {"agent_id": agent_id})


def instances(
    conn: Connection, tenant_scope: str | None, *, status: str | None = None, listing_id: str | None = None,
    node_id: str | None = None, limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    return instances_page(conn, tenant_scope, status=status, listing_id=listing_id, node_id=node_id, limit=limit)[0]


def instances_page(
    conn: Connection, tenant_scope: str | None, *, status: str | None = None, listing_id: str | None = None,
    node_id: str | None = None, limit: int = 100, cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:  # fmt: skip
    """Newest first; a page and the cursor of the next (keyset: older than the instance the cursor names, which must
    be one the caller sees — another tenant's names nothing, so the page is empty)."""
    stmt = select(market_instances)
    for column, value in (("tenant_id", tenant_scope), ("status", status), ("listing_id", listing_id), ("node_id", node_id)):
        if value is not None:
            stmt = stmt.where(market_instances.c[column] == value)
    after = decode_cursor(cursor)
    if after is not None:
        pivot = select(market_instances.c.created_at).where(market_instances.c.instance_id == after)
        if tenant_scope is not None:
            pivot = pivot.where(market_instances.c.tenant_id == tenant_scope)
        at = pivot.scalar_subquery()
        stmt = stmt.where(
            or_(market_instances.c.created_at < at, and_(market_instances.c.created_at == at, market_instances.c.instance_id > after))
        )
    rows = conn.execute(stmt.order_by(market_instances.c.created_at.desc(), market_instances.c.instance_id).limit(limit + 1))
    return page([dict(r) for r in rows.mappings()], limit, lambda r: r["instance_id"])


def update_instance(conn: Connection, instance_id: str, **values: Any) -> None:
    conn.execute(update(market_instances).where(market_instances.c.instance_id == instance_id).values(**values))


# -- usage ------------------------------------------------------------------------------------------------------------


def requests_between(conn: Connection, agent_id: str, start: datetime, end: datetime) -> int:
    """Tasks the agent completed in [start, end)."""
    return conn.execute(
        select(func.count()).where(
            tasks.c.claimed_by == agent_id, tasks.c.status == "completed", tasks.c.finished_at >= start, tasks.c.finished_at < end
        )
    ).scalar_one()


def switch_period(conn: Connection, inst: dict[str, Any], state: str | None, now: datetime) -> dict[str, Any]:
    """Close the instance's open usage period at ``now`` (one row per month it touched) and open ``state`` (or none).

    The period is moved only if it is still the one ``inst`` shows (409 otherwise): two replicas closing the same
    period at once would bill it twice."""
    same = (
        market_instances.c.period_started_at == inst["period_started_at"]
        if inst["period_started_at"] is not None
        else market_instances.c.period_started_at.is_(None)
    )
    changes = {"period_state": state, "period_started_at": now if state else None}
    moved = conn.execute(update(market_instances).where(market_instances.c.instance_id == inst["instance_id"], same).values(**changes))
    if moved.rowcount != 1:
        raise Conflict("the instance changed at the same moment; try again", details={"instance_id": inst["instance_id"]})
    if inst["period_state"] is not None and now > inst["period_started_at"]:
        rows = [
            {
                "instance_id": inst["instance_id"], "tenant_id": inst["tenant_id"], "listing_id": inst["listing_id"],
                "state": inst["period_state"], "started_at": start, "ended_at": end, "micros": micros_between(start, end),
                "requests": requests_between(conn, inst["agent_id"], start, end), "month": month_of(start),
            }
            for start, end in split_by_month(inst["period_started_at"], now)
        ]
        _pay_from_credits(conn, inst, rows, now)
        conn.execute(insert(market_usage), rows)
    return {**inst, **changes}


def _pay_from_credits(conn: Connection, inst: dict[str, Any], periods: list[dict[str, Any]], now: datetime) -> None:
    """What closing ``periods`` adds to each month's bill is paid from the customer's credits, as far as they go.

    The amount is the month's cost with the periods less its cost without them, both rounded as the invoice rounds
    them, so that a month's debits add up to its invoice's time and request charges to the millionth."""
    pricing, iid = inst["pricing"], inst["instance_id"]
    if credit_ops.balance(conn, inst["tenant_id"], pricing["currency"]) is None:
        return  # no credits: the invoice asks for it all
    for period in periods:
        before = usage_totals(conn, [iid], period["month"])[iid]
        running = period["micros"] if period["state"] == "running" else 0
        added = cost(pricing, before["running"] + running, before["requests"] + period["requests"]).total_cost
        added -= cost(pricing, before["running"], before["requests"]).total_cost
        credit_ops.charge(conn, {
            "tenant_id": inst["tenant_id"], "currency": pricing["currency"], "amount": to_millionths(added),
            "idempotency_key": f"usage:{iid}:{period['started_at'].isoformat()}", "source": "usage", "instance_id": iid,
            "month": period["month"], "note": f"{period['state']} {period['started_at']:%Y-%m-%d %H:%M}-{period['ended_at']:%H:%M}",
            "created_at": now,
        })  # fmt: skip


def open_since(conn: Connection, before: datetime) -> list[dict[str, Any]]:
    """Instances whose usage period has been open since before ``before``."""
    stmt = select(market_instances).where(market_instances.c.period_state.is_not(None), market_instances.c.period_started_at < before)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def usage_totals(conn: Connection, instance_ids: list[str], month: str | None = None) -> dict[str, dict[str, Any]]:
    """Per instance, from closed periods: running and down microseconds and completed requests (of one month)."""
    stmt = select(
        market_usage.c.instance_id, market_usage.c.state, func.sum(market_usage.c.micros), func.sum(market_usage.c.requests)
    ).where(market_usage.c.instance_id.in_(instance_ids))
    if month is not None:
        stmt = stmt.where(market_usage.c.month == month)
    totals: dict[str, dict[str, Any]] = {i: {"running": 0, "down": 0, "paused": 0, "requests": 0} for i in instance_ids}
    for instance_id, state, micros, requests in conn.execute(stmt.group_by(market_usage.c.instance_id, market_usage.c.state)):
        totals[instance_id][state] += int(micros or 0)
        totals[instance_id]["requests"] += int(requests or 0)
    return totals


def usage_by_month(conn: Connection, tenant_id: str, first: str, last: str) -> list[tuple[str, str, str, int, int]]:
    """The tenant's closed usage periods from month ``first`` to ``last`` (YYYY-MM), added up per instance, month and
    state: (instance_id, month, state, micros, requests)."""
    u = market_usage.c
    rows = conn.execute(
        select(u.instance_id, u.month, u.state, func.sum(u.micros), func.sum(u.requests))
        .where(u.tenant_id == tenant_id, u.month >= first, u.month <= last)
        .group_by(u.instance_id, u.month, u.state)
    )
    return [(iid, month, state, int(micros or 0), int(requests or 0)) for iid, month, state, micros, requests in rows]


def open_periods(conn: Connection, tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's instances whose usage period is open (its live ones)."""
    stmt = select(market_instances).where(market_instances.c.tenant_id == tenant_id, market_instances.c.period_state.is_not(None))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def pricing_of(conn: Connection, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    stmt = select(market_instances.c.instance_id, market_instances.c.pricing).where(market_instances.c.instance_id.in_(instance_ids))
    return {iid: pricing for iid, pricing in conn.execute(stmt)}
