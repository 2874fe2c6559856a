"""The hub's OAuth authorization server (``oauth_clients``, ``oauth_grants``, ``oauth_tokens``): hashes only, except
a registered client's own record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ..base import point_read
from ..schema import oauth_clients, oauth_grants, oauth_tokens


def insert_client(conn: Connection, client_id: str, info: dict[str, Any], now: datetime) -> None:
    conn.execute(insert(oauth_clients), {"client_id": client_id, "info": info, "created_at": now})


@point_read
def client(conn: Connection, client_id: str) -> dict[str, Any] | None:
    return conn.execute(select(oauth_clients.c.info).where(oauth_clients.c.client_id == client_id)).scalar()


def insert_grant(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(oauth_grants), row)


@point_read
def pending_grant(conn: Connection, request_hash: str, now: datetime) -> dict[str, Any] | None:
    """An authorization request still waiting for the person's answer."""
    stmt = select(oauth_grants).where(
        oauth_grants.c.request_hash == request_hash, oauth_grants.c.code_hash.is_(None), oauth_grants.c.expires_at > now
    )
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def approve_grant(conn: Connection, request_hash: str, key_hash: str, code_hash: str, expires_at: datetime, now: datetime) -> bool:
    """Approve a pending request once (a second answer finds it approved already): it now has a code."""
    stmt = (
        update(oauth_grants)
        .where(oauth_grants.c.request_hash == request_hash, oauth_grants.c.code_hash.is_(None), oauth_grants.c.expires_at > now)
        .values(key_hash=key_hash, code_hash=code_hash, expires_at=expires_at)
    )
    return conn.execute(stmt).rowcount > 0


def drop_grant(conn: Connection, request_hash: str) -> bool:
    """A pending request the person turned down."""
    stmt = delete(oauth_grants).where(oauth_grants.c.request_hash == request_hash, oauth_grants.c.code_hash.is_(None))
    return conn.execute(stmt).rowcount > 0


@point_read
def code(conn: Connection, code_hash: str, now: datetime) -> dict[str, Any] | None:
    stmt = select(oauth_grants).where(oauth_grants.c.code_hash == code_hash, oauth_grants.c.expires_at > now)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def redeem_code(conn: Connection, code_hash: str, tokens: list[dict[str, Any]]) -> bool:
    """Take a code and store the tokens it buys, in one transaction: a code redeemed twice buys nothing the second time."""
    if conn.execute(delete(oauth_grants).where(oauth_grants.c.code_hash == code_hash)).rowcount == 0:
        return False
    conn.execute(insert(oauth_tokens), tokens)
    return True


def rotate(conn: Connection, refresh_hash: str, tokens: list[dict[str, Any]]) -> list[str] | None:
    """Trade a refresh token for a new pair: the old pair ends, once (a token used twice buys nothing the second time).
    The hashes of the tokens that ended; None if the refresh token was not there."""
    is_refresh = conn.execute(select(oauth_tokens.c.kind).where(oauth_tokens.c.token_hash == refresh_hash)).scalar() == "refresh"
    ended = revoke_pair(conn, refresh_hash) if is_refresh else []
    if not ended:
        return None
    conn.execute(insert(oauth_tokens), tokens)
    return ended


@point_read
def token(conn: Connection, token_hash: str, kind: str, now: datetime) -> dict[str, Any] | None:
    stmt = select(oauth_tokens).where(oauth_tokens.c.token_hash == token_hash, oauth_tokens.c.kind == kind, oauth_tokens.c.expires_at > now)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def revoke_pair(conn: Connection, token_hash: str) -> list[str]:
    """End the pair a token belongs to; the hashes of the tokens that ended (for the principal caches)."""
    pair = conn.execute(select(oauth_tokens.c.pair_id).where(oauth_tokens.c.token_hash == token_hash)).scalar()
    if pair is None:
        return []
    hashes = list(conn.execute(select(oauth_tokens.c.token_hash).where(oauth_tokens.c.pair_id == pair)).scalars())
    conn.execute(delete(oauth_tokens).where(oauth_tokens.c.pair_id == pair))
    return hashes


def purge_expired(conn: Connection, now: datetime) -> int:
    grants = conn.execute(delete(oauth_grants).where(oauth_grants.c.expires_at <= now)).rowcount
    return grants + conn.execute(delete(oauth_tokens).where(oauth_tokens.c.expires_at <= now)).rowcount
