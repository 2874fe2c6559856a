"""Marketplace chat conversations (``chat_conversations``): read one of the caller's tenant, write a turn's memory."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from agora_sdk.errors import NotFound

from ..base import point_read
from ..schema import chat_conversations as conversations


def _missing(conversation_id: str) -> NotFound:
    return NotFound(f"no conversation '{conversation_id}' (it may have expired)", details={"conversation_id": conversation_id})


@point_read
def memory(conn: Connection, conversation_id: str, tenant_scope: str | None, now: datetime) -> dict[str, Any]:
    """The conversation's memory; another tenant's, like one that expired or never was, is not found."""
    stmt = select(conversations.c.tenant_id, conversations.c.memory).where(
        conversations.c.conversation_id == conversation_id, conversations.c.expires_at > now
    )
    row = conn.execute(stmt).first()
    if row is None or (tenant_scope is not None and row.tenant_id != tenant_scope):
        raise _missing(conversation_id)
    return dict(row.memory)


def save(
    conn: Connection, conversation_id: str, tenant_id: str, started_by: str, remember: Callable[[dict[str, Any] | None], dict[str, Any]],
    now: datetime, expires_at: datetime,
) -> None:  # fmt: skip
    """Write a turn: ``remember`` makes the new memory from the stored one (None for a new conversation), inside this
    transaction, so two turns at once each keep the other's. Expired conversations are forgotten on the way."""
    conn.execute(delete(conversations).where(conversations.c.expires_at <= now))
    row = conn.execute(select(conversations.c.memory).where(conversations.c.conversation_id == conversation_id)).first()
    values = {"memory": remember(dict(row.memory) if row else None), "updated_at": now, "expires_at": expires_at}
    if row is None:
        conn.execute(insert(conversations).values(conversation_id=conversation_id, tenant_id=tenant_id, started_by=started_by, created_at=now, **values))
    else:
        conn.execute(update(conversations).where(conversations.c.conversation_id == conversation_id).values(**values))
