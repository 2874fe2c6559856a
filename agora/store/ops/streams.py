"""What a live stream hands out: inbox deliveries in sequence order, with the visibility timeout of ``receive``."""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from ..prepared import Prepared
from ..schema import inbox, messages, subscriptions
from .dialect import one_of
from . import messages as message_ops
from . import shared as shared_ops


def deliver(
    conn: Connection,
    agent: dict[str, Any],
    *,
    kinds: list[str],
    shared: bool,
    resend: tuple[int, int] | None,
    limit: int,
    visibility: timedelta,
    now: datetime,
    next_visible: datetime | None,
    recompute: bool,
    known: Container[tuple[int, str | None]] = (),
) -> tuple[list[dict[str, Any]], datetime | None]:
    """Hand the stream up to ``limit`` deliveries, oldest first; also when the next hidden one becomes visible again.

    Inbox deliveries come first; then, when ``shared`` (a broadcast or subscribed topic message may have landed),
    shared messages past the read positions are lent to the stream (``shared.lend``: a range, not a row each; those
    ``known`` to be rendered already come without their bodies).
    ``next_visible``: the stream's own timer, moved by what it hands out; looked up in the store only on ``recompute``
    (the timer fired: lent ranges that came back become inbox rows first).

    ``resend`` (a resumed stream): unacked deliveries with a sequence number in (low, high] went to the lost connection
    after the last frame the client saw, so they are handed out again at once instead of waiting out their visibility
    timeout. ``high`` is where the store stood at the reconnect: later deliveries follow the visibility rule.
    """
    if recompute:
        shared_ops.reclaim(conn, agent, now)
    params = {"agent_id": agent["agent_id"], "now": now, "limit": limit}
    if resend is not None:
        params |= {"low": resend[0] + 1, "high": resend[1]}
    rows = _deliverable(tuple(kinds), resend is not None).rows(conn, params)
    rows = message_ops.hand_out(conn, agent["agent_id"], rows, visibility, now)
    if shared and len(rows) < limit:
        rows += shared_ops.lend(conn, agent, tuple(kinds), limit - len(rows), visibility, now, known)
    if recompute:
        next_visible = min(
            (t for t in (_NEXT_VISIBLE.scalar(conn, params), shared_ops.next_lent_visible(conn, agent["agent_id"], now)) if t),
            default=None,
        )
    elif rows:
        next_visible = min(next_visible or now + visibility, now + visibility)
    return rows, next_visible


@lru_cache(maxsize=32)
def _deliverable(kinds: tuple[str, ...], resend: bool) -> Prepared:
    """Deliveries due now (or, resending, in low..high) of these message kinds, oldest first, at most ``limit``."""
    due = inbox.c.visible_at <= bindparam("now")
    if resend:
        due = or_(due, inbox.c.seq.between(bindparam("low"), bindparam("high")))
    stmt = message_ops.PENDING.where(due, or_(*(messages.c.kind == kind for kind in kinds)))
    return Prepared(stmt.order_by(inbox.c.seq).limit(bindparam("limit")))


_NEXT_VISIBLE = Prepared(
    select(func.min(inbox.c.visible_at)).where(
        inbox.c.agent_id == bindparam("agent_id"), inbox.c.acked_at.is_(None), inbox.c.visible_at > bindparam("now")
    )
)


@lru_cache(maxsize=4)
def _give_back(dialect: str, uncount: bool) -> Prepared:
    return Prepared(
        update(inbox)
        .where(
            inbox.c.agent_id == bindparam("b_agent_id"), one_of(dialect, inbox.c.seq, "seqs"), inbox.c.acked_at.is_(None),
            inbox.c.delivery_count > 0,
        )
        .values(visible_at=bindparam("now"), **({"delivery_count": inbox.c.delivery_count - 1} if uncount else {}))
    )


def give_back(conn: Connection, agent_id: str, unframed: list[int], unsent: list[int], now: datetime) -> None:
    """Deliveries handed out to a stream that ended before it sent them, due again at once: ``unframed`` as if never
    handed out, ``unsent`` (their frames may have left) still counted."""
    for seqs, uncount in ((unframed, True), (unsent, False)):
        if seqs:
            _give_back(conn.dialect.name, uncount).execute(conn, {"b_agent_id": agent_id, "seqs": seqs, "now": now})


def subscribed_event_types(conn: Connection, agent_id: str) -> list[str]:
    """The hub event types (globs) the agent's subscriptions ask for."""
    rows = conn.execute(select(subscriptions.c.event_types).where(subscriptions.c.agent_id == agent_id)).scalars()
    return sorted({t for types in rows for t in types})
