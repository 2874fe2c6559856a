"""Web console sessions: an API key or agent token, given once on the sign-in form, exchanged for a cookie.

The cookie carries a random 256-bit token; the store keeps only its SHA-256, the hash of the key it stands for and a
CSRF token for the session's forms. Every request re-derives the principal from that key hash through the
``Authenticator`` (cached like a bearer key), so revoking the key — or deregistering the agent — ends its console
sessions on every replica, and a session can never do more than its key. Signing out deletes the row.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from agora.store import Store
from agora.store.ops import sessions as session_ops
from agora_sdk.errors import Unauthenticated

from .auth import Principal, hash_key
from .authn import Authenticator
from .clock import Clock


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str
    expires_at: datetime


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, store: Store, auth: Authenticator, clock: Clock, lifetime: timedelta):
        self._store = store
        self._auth = auth
        self._clock = clock
        self.lifetime = lifetime

    async def sign_in(self, key: str, client: str | None) -> tuple[str, Session]:
        """(the cookie's token, the session) for a valid key; ``Unauthenticated`` (counted against ``client``) if not."""
        principal = await self._auth.principal_for_key(key.strip(), client)
        token = secrets.token_urlsafe(32)
        now = self._clock.now()
        row = {
            "session_hash": _session_hash(token),
            "key_hash": principal.key_hash or hash_key(key.strip()),
            "csrf_token": secrets.token_urlsafe(32),
            "created_at": now,
            "expires_at": now + self.lifetime,
        }
        await self._store.write(session_ops.insert_session, row)
        return token, Session(principal, row["csrf_token"], row["expires_at"])

    async def resume(self, token: str) -> Session | None:
        """The live session a cookie's token stands for: None once it expired, was ended, or its key was revoked."""
        if not token or len(token) > 128:
            return None
        row = await self._store.read(session_ops.lookup, _session_hash(token), self._clock.now())
        if row is None:
            return None
        try:
            principal = await self._auth.principal_for_hash(row["key_hash"])
        except Unauthenticated:
            return None
        return Session(principal, row["csrf_token"], row["expires_at"])

    async def sign_out(self, token: str) -> None:
        if token and len(token) <= 128:
            await self._store.write(session_ops.end, _session_hash(token))

    async def purge_expired(self) -> int:
        return await self._store.write(session_ops.purge_expired, self._clock.now())
