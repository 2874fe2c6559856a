"""Web console sessions: an API key or agent token, given once on the sign-in form, or a person's email and password
(``core/accounts.py``), exchanged for a cookie.

The cookie carries a random 256-bit token; the store keeps only its SHA-256, the hash of the key it stands for and a
CSRF token for the session's forms. A person's session stands for a key minted for it (their role in one tenant,
ending with the session). Every request re-derives the principal from that key hash through the ``Authenticator``
(cached like a bearer key), so revoking the key — deregistering the agent, removing the person — ends its console
sessions on every replica, and a session can never do more than its key. Signing out deletes the row (and revokes a
person's session key).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agora.store import Store
from agora.store.ops import sessions as session_ops
from agora.store.ops import users as user_ops
from agora_sdk.errors import InvalidArgument, Unauthenticated

from .accounts import Accounts, hash_password, token_hash
from .auth import Principal, hash_key
from .authn import Authenticator
from .clock import Clock

if TYPE_CHECKING:
    from .oidc import IdentityProvider


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf_token: str
    expires_at: datetime


def _session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    def __init__(self, store: Store, auth: Authenticator, clock: Clock, lifetime: timedelta, accounts: Accounts):
        self._store = store
        self._auth = auth
        self._clock = clock
        self.lifetime = lifetime
        self.accounts = accounts

    async def sign_in_person(self, email: str, password: str, code: str, client: str, tenant: str | None = None) -> tuple[str, Session]:
        """A person's session (in ``tenant``, else their first), by email, password and second factor."""
        user = await self.accounts.verify(email, password, code, client)
        return await self._person(user, tenant)

    async def sign_up(self, link: str, password: str) -> tuple[str, Session]:
        """Take a one-time sign-up link: set the person's password, and sign them in."""
        password_hash = hash_password(password)
        user = await self._store.write(user_ops.take_link, token_hash(link), password_hash, self._clock.now()) if link else None
        if user is None:
            raise InvalidArgument("this sign-up link is not valid: it was used, it expired, or it never existed", details={"field": "token"})
        return await self._person(user, None)

    async def link_email(self, link: str) -> str | None:
        """The email a sign-up link is for, while it can be used (nothing is taken)."""
        if not link:
            return None
        user = await self._store.read(user_ops.link_user, token_hash(link), self._clock.now())
        return None if user is None else str(user["email"])

    async def switch(self, token: str, session: Session, tenant: str) -> tuple[str, Session]:
        """The signed-in person's session in another of their tenants; the current one ends."""
        if session.principal.user_id is None:
            raise InvalidArgument("only a person's session switches tenants (a key belongs to one)", details={"field": "tenant"})
        user = await self._store.read(user_ops.get, session.principal.user_id)
        started = await self._person(user, tenant)
        await self.sign_out(token)
        return started

    async def start_sso(self, sso: IdentityProvider, next_: str, redirect_uri: str) -> tuple[str, str]:
        """Begin a single sign-on: (the cookie binding this browser to it, where to send the browser)."""
        state, nonce, verifier, browser = (secrets.token_urlsafe(32) for _ in range(4))
        url = await sso.authorization_url(redirect_uri, state, nonce, verifier)
        row = {
            "state_hash": token_hash(state), "browser_hash": token_hash(browser), "nonce": nonce, "verifier": verifier,
            "next": next_[:512], "expires_at": self._clock.now() + user_ops.SSO_REQUEST_LIFETIME,
        }  # fmt: skip
        await self._store.write(user_ops.insert_sso_request, row)
        return browser, url

    async def finish_sso(self, sso: IdentityProvider, state: str, code: str, browser: str, redirect_uri: str) -> tuple[str, Session, str]:
        """The provider sent the browser back: (the session's cookie token, the session, where the person was going).
        Refused (nothing changes) for a state used before, unknown or expired, or begun by another browser."""
        request = await self._store.write(user_ops.take_sso_request, token_hash(state), self._clock.now()) if state else None
        if request is None or not browser or not hmac.compare_digest(request["browser_hash"], token_hash(browser)):
            raise Unauthenticated("this sign-in was not started here, was used already, or took too long: start again")
        identity, id_token = await sso.sign_in(code, redirect_uri, request["verifier"], request["nonce"])
        user = await self._store.write(
            user_ops.sign_in_sso, identity.issuer, identity.subject, identity.email, identity.name,
            [(tenant, role.value) for tenant, role in identity.roles], self._clock.now(),
        )  # fmt: skip
        token, session = await self._person(user, user["tenants"][0], id_token)
        return token, session, request["next"]

    async def _person(self, user: dict[str, object], tenant: str | None, id_token: str | None = None) -> tuple[str, Session]:
        signed = await self.accounts.start_session(user, tenant, self.lifetime)
        return await self.sign_in(signed.key, None, id_token)

    async def sign_in(self, key: str, client: str | None, id_token: str | None = None) -> tuple[str, Session]:
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
            "id_token": id_token,
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

    async def sign_out(self, token: str) -> str | None:
        """End the session; a person's session key goes with it (it stood for nothing else). Returns the ID token of
        a single sign-on, for the provider's logout."""
        if not token or len(token) > 128:
            return None
        revoked, id_token = await self._store.write(session_ops.end, _session_hash(token), self._clock.now())
        if revoked:
            self._auth.forget(revoked)
        return id_token

    async def purge_expired(self) -> int:
        return await self._store.write(session_ops.purge_expired, self._clock.now())
