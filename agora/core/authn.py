"""Turning an ``Authorization: Bearer`` header into a Principal, with a short cache and a brake on guessing.

The cache keeps a hot key from costing a database read per call. A revocation (a key revoked, an agent
deregistered, paused or its instance gone) drops the cached entries at once on the replica that made it and, through
the notifier, on every other replica (``revoked``, handed the event by ``Wakeups``): within the notifier's latency, not the cache's ``ttl``.

A key that is not in the cache is checked only if its source may try (``Throttle.before_key_check``: not locked
out, not past its failed-attempt budget); a refused key counts against its source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time
from datetime import UTC, datetime

from agora.bus import Event, Notifier
from agora.limits import Throttle
from agora.store import Store
from agora.store.ops import keys as key_ops
from agora.store.ops import oauth as oauth_ops
from agora_sdk.errors import Unauthenticated

from .auth import ACCESS_TOKEN_PREFIX, KEY_PREFIX, Principal, PrincipalKind, hash_key

BOOTSTRAP_KEY_ID = "bootstrap"
REVOKED = "auth_revoked"  # the notifier event that tells every replica to drop cached principals
ANY_CREDENTIALS = "credentials:*"  # the wake-up key of every live stream when revocations name no key


def credentials_key(key_hash: str) -> str:
    """The wake-up key a live stream authenticated with ``key_hash`` parks on, to look at its key again."""
    return f"credentials:{key_hash}"


def revocation_wake_keys(event: Event) -> list[str]:
    hashes = event.data.get("key_hashes")
    return [ANY_CREDENTIALS] if hashes is None else [credentials_key(h) for h in hashes]


class Authenticator:
    def __init__(
        self,
        store: Store,
        bootstrap_admin_key: str,
        ttl: float = 5.0,
        max_entries: int = 100_000,
        *,
        throttle: Throttle | None = None,
        notifier: Notifier | None = None,
    ):
        self._store = store
        self._bootstrap_hash = hash_key(bootstrap_admin_key)
        self._ttl = ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._derived: dict[str, set[str]] = {}  # a key's hash -> the cached OAuth access tokens standing for it
        self._throttle = throttle
        self._notifier = notifier
        self._announcing: set[asyncio.Task[None]] = set()  # publishes under way (a task nobody holds may vanish)

    async def authenticate(self, authorization: str | None, client: str | None = None) -> Principal:
        """The principal of a bearer key; ``client`` is the source address the brake on failures counts."""
        if not authorization:
            raise Unauthenticated("missing 'Authorization: Bearer <api key>' header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <api key>'")
        return await self.principal_for_key(token, client)

    async def principal_for_key(self, token: str, client: str | None = None) -> Principal:
        """The principal of an API key or agent token given as it is (the console's sign-in form sends one)."""
        key_hash = hash_key(token)
        cached = self._cached(key_hash)
        if cached is not None:
            return cached
        braked = self._throttle is not None and client is not None and not hmac.compare_digest(key_hash, self._bootstrap_hash)
        if braked:
            await self._throttle.before_key_check(client)  # type: ignore[union-attr, arg-type]
        try:
            if token.startswith(ACCESS_TOKEN_PREFIX):
                return await self._access_token(key_hash)
            principal = await self._load(key_hash, token.startswith(KEY_PREFIX))
        except Unauthenticated:
            if braked:
                await self._throttle.key_check_failed(client)  # type: ignore[union-attr, arg-type]
            raise
        return self._remember(key_hash, principal)

    async def _access_token(self, token_hash: str) -> Principal:
        """An OAuth access token's principal: its key's, narrowed to the scopes granted, cached no longer than the
        token lives and dropped with the key's own entry when the key is revoked."""
        row = await self._store.read(oauth_ops.token, token_hash, "access", datetime.now(UTC))
        if row is None:
            raise Unauthenticated("the access token is not valid (unknown, expired or revoked)")
        key = await self.principal_for_hash(row["key_hash"])
        principal = dataclasses.replace(key, scopes=key.scopes & frozenset(row["scopes"] or ()))
        self._derived.setdefault(row["key_hash"], set()).add(token_hash)
        left = (row["expires_at"] - datetime.now(UTC)).total_seconds()
        return self._remember(token_hash, principal, min(self._ttl, left))

    async def principal_for_hash(self, key_hash: str) -> Principal:
        """The principal of the key whose hash a console session holds: revoked since, and the session is over."""
        cached = self._cached(key_hash)
        return cached if cached is not None else self._remember(key_hash, await self._load(key_hash, True))

    def _cached(self, key_hash: str) -> Principal | None:
        cached = self._cache.get(key_hash)
        return cached[1] if cached and cached[0] > time.monotonic() else None

    def _remember(self, key_hash: str, principal: Principal, ttl: float | None = None) -> Principal:
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
            self._derived.clear()
        self._cache[key_hash] = (time.monotonic() + (self._ttl if ttl is None else ttl), principal)
        return principal

    async def _load(self, key_hash: str, may_be_stored: bool) -> Principal:
        if hmac.compare_digest(key_hash, self._bootstrap_hash):
            return Principal(PrincipalKind.admin, BOOTSTRAP_KEY_ID, "default", frozenset(), key_hash=key_hash)
        row = await self._store.read(key_ops.lookup, key_hash, datetime.now(UTC)) if may_be_stored else None
        if row is None:
            raise Unauthenticated("the API key is not valid (unknown or revoked)")
        return Principal(
            kind=PrincipalKind(row["kind"]),
            key_id=row["key_id"],
            tenant_id=row["tenant_id"] or "default",
            scopes=frozenset(row["scopes"]),
            agent_id=row["agent_id"],
            agent_status=row["agent_status"],
            key_hash=key_hash,
            role=row["role"],
            user_id=row["user_id"],
            user_email=row["user_email"],
        )

    def forget(self, key_hashes: list[str] | None = None) -> None:
        """Drop cached principals (all of them when no hashes are given), here at once and on every replica."""
        self._drop(key_hashes)
        if self._notifier is not None:
            event = Event(REVOKED, None, {"key_hashes": key_hashes})
            task = asyncio.get_running_loop().create_task(self._notifier.publish(event))
            self._announcing.add(task)
            task.add_done_callback(self._announcing.discard)

    def revoked(self, event: Event) -> None:
        """A revocation announced by ``forget`` on any replica (this one's own come back too: dropping twice is fine)."""
        self._drop(event.data.get("key_hashes"))

    async def still_valid(self, principal: Principal) -> bool:
        """Whether a principal authenticated a while ago (a live stream's) would still be let in: its key not revoked,
        its agent not terminated. A paused agent keeps its streams (it is refused only new work)."""
        if principal.key_hash is None or hmac.compare_digest(principal.key_hash, self._bootstrap_hash):
            return True
        row = await self._store.read(key_ops.lookup, principal.key_hash, datetime.now(UTC))
        return row is not None and row["agent_status"] != "terminated"

    def _drop(self, key_hashes: list[str] | None) -> None:
        if key_hashes is None:
            self._cache.clear()
            self._derived.clear()
        for h in key_hashes or ():
            self._cache.pop(h, None)
            for token_hash in self._derived.pop(h, ()):
                self._cache.pop(token_hash, None)
