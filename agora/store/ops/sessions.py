"""Web console sessions (``console_sessions``): only hashes of the cookie and of the key are stored."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ..base import point_read
from ..schema import api_keys, console_sessions


def insert_session(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(insert(console_sessions), row)


@point_read
def lookup(conn: Connection, session_hash: str, now: datetime) -> dict[str, Any] | None:
    """The session with this hash, unless it has expired."""
    stmt = select(console_sessions).where(console_sessions.c.session_hash == session_hash, console_sessions.c.expires_at > now)
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def end(conn: Connection, session_hash: str, now: datetime) -> tuple[list[str], str | None]:
    """Delete the session; a person's session key (minted for it alone) is revoked with it. Returns the revoked key
    hashes (for the authenticator to forget) and the session's single sign-on ID token, if any."""
    ended = conn.execute(
        delete(console_sessions)
        .where(console_sessions.c.session_hash == session_hash)
        .returning(console_sessions.c.key_hash, console_sessions.c.id_token)
    ).first()
    if ended is None:
        return [], None
    key_hash, id_token = ended
    minted = (api_keys.c.key_hash == key_hash) & api_keys.c.user_id.is_not(None) & api_keys.c.revoked_at.is_(None)
    revoked = [key_hash] if conn.execute(update(api_keys).where(minted).values(revoked_at=now)).rowcount else []
    return revoked, id_token


def purge_expired(conn: Connection, now: datetime) -> int:
    return conn.execute(delete(console_sessions).where(console_sessions.c.expires_at <= now)).rowcount
