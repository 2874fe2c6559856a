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
from typing import TYPE_CHECKING, Any

from agora.bus import Event, Notifier
from agora.limits import Throttle
from agora.store import Store
from agora.store.ops import keys as key_ops
from agora.store.ops import oauth as oauth_ops
from agora.store.ops import users as user_ops
from agora_sdk.errors import Unauthenticated
from agora_sdk.wire.admin import Role

from .auth import ACCESS_TOKEN_PREFIX, KEY_PREFIX, ROLE_SCOPES, Principal, PrincipalKind, hash_key
from .clock import Clock

if TYPE_CHECKING:
    from .oidc import IdentityProvider

BOOTSTRAP_KEY_ID = "bootstrap"
PROVIDER_TOKEN = "oidc"  # the key id of a principal an identity provider's access token stands for
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
        clock: Clock | None = None,
    ):
        self._store = store
        self._clock = clock or Clock()  # the hub's: expiries are stamped by it, on every replica alike
        self._bootstrap_hash = hash_key(bootstrap_admin_key)
        self._ttl = ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._derived: dict[str, set[str]] = {}  # a key's hash -> the cached OAuth access tokens standing for it
        self._throttle = throttle
        self._notifier = notifier
        self.sso: IdentityProvider | None = None  # set when the provider's access tokens are accepted (--oidc-*)
        self._people: dict[str, set[str]] = {}  # a person's id -> the cached JWT access tokens standing for them
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
            if self.sso is not None and self.sso.settings.audience and token.count(".") == 2:
                return await self._provider_token(token, key_hash)
            principal = await self._load(key_hash, token.startswith(KEY_PREFIX))
        except Unauthenticated:
            if braked:
                await self._throttle.key_check_failed(client)  # type: ignore[union-attr, arg-type]
            raise
        return self._remember(key_hash, principal)

    async def _access_token(self, token_hash: str) -> Principal:
        """An OAuth access token's principal: its key's, narrowed to the scopes granted, cached no longer than the
        token lives and dropped with the key's own entry when the key is revoked."""
        row = await self._store.read(oauth_ops.token, token_hash, "access", self._clock.now())
        if row is None:
            raise Unauthenticated("the access token is not valid (unknown, expired or revoked)")
        key = await self.principal_for_hash(row["key_hash"])
        principal = dataclasses.replace(key, scopes=key.scopes & frozenset(row["scopes"] or ()))
        self._derived.setdefault(row["key_hash"], set()).add(token_hash)
        left = (row["expires_at"] - self._clock.now()).total_seconds()
        return self._remember(token_hash, principal, min(self._ttl, left))

    async def _provider_token(self, token: str, token_hash: str) -> Principal:
        """The person a JWT access token of the identity provider stands for, in the first tenant its claims give a
        role in, with that role; cached until it expires (no more than ``ttl``), dropped when the person is removed.
        Their memberships are written only when the claims say something new."""
        assert self.sso is not None
        identity = await self.sso.access_token(token)
        roles = [(tenant, role.value) for tenant, role in identity.roles]
        user = await self._store.read(user_ops.sso_member, identity.issuer, identity.subject)
        if user is not None and user["removed_at"] is not None:
            raise Unauthenticated("an administrator removed this person from the hub")
        if user is None or not _same_roles(user, roles):
            user = await self._store.write(
                user_ops.sign_in_sso, identity.issuer, identity.subject, identity.email, identity.name, roles, self._clock.now()
            )  # fmt: skip
        tenant_id = _tenant_of(user, roles[0][0])  # the first tenant the claims name
        role = user["memberships"].get(tenant_id) if tenant_id else None
        if tenant_id is None or role is None:
            raise Unauthenticated("the token gives no role in any tenant")
        principal = Principal(
            PrincipalKind.customer, PROVIDER_TOKEN, tenant_id, ROLE_SCOPES[Role(role)], key_hash=token_hash, role=role,
            user_id=user["user_id"], user_email=user["email"],
        )  # fmt: skip
        self._people.setdefault(user["user_id"], set()).add(token_hash)
        left = (identity.expires_at or time.time() + self._ttl) - time.time()
        return self._remember(token_hash, principal, min(self._ttl, max(0.0, left)))

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
            self._people.clear()
        self._cache[key_hash] = (time.monotonic() + (self._ttl if ttl is None else ttl), principal)
        return principal

    async def _load(self, key_hash: str, may_be_stored: bool) -> Principal:
        if hmac.compare_digest(key_hash, self._bootstrap_hash):
            return Principal(PrincipalKind.admin, BOOTSTRAP_KEY_ID, "default", frozenset(), key_hash=key_hash)
        row = await self._store.read(key_ops.lookup, key_hash, self._clock.now()) if may_be_stored else None
        if row is None:
            raise Unauthenticated("the API key is not valid (unknown or revoked)")
        return principal_of_key(row, key_hash)

    def forget(self, key_hashes: list[str] | None = None, user_ids: list[str] | None = None) -> None:
        """Drop cached principals (all of them when no hashes are given), and the provider's tokens of these people,
        here at once and on every replica."""
        self._drop(key_hashes, user_ids)
        if self._notifier is not None:
            event = Event(REVOKED, None, {"key_hashes": key_hashes, "user_ids": user_ids})
            task = asyncio.get_running_loop().create_task(self._notifier.publish(event))
            self._announcing.add(task)
            task.add_done_callback(self._announcing.discard)

    def revoked(self, event: Event) -> None:
        """A revocation announced by ``forget`` on any replica (this one's own come back too: dropping twice is fine)."""
        self._drop(event.data.get("key_hashes"), event.data.get("user_ids"))

    async def still_valid(self, principal: Principal) -> bool:
        """Whether a principal authenticated a while ago (a live stream's) would still be let in: its key not revoked,
        its agent not terminated. A paused agent keeps its streams (it is refused only new work)."""
        if principal.key_hash is None or hmac.compare_digest(principal.key_hash, self._bootstrap_hash):
            return True
        if principal.key_id == PROVIDER_TOKEN:  # the provider's token: its person still here, still in the tenant
            user = await self._store.read(user_ops.get, principal.user_id)
            held = await self._store.read(user_ops.memberships_of, [principal.user_id], principal.tenant_id)
            return user is not None and user["removed_at"] is None and bool(held[principal.user_id])
        row = await self._store.read(key_ops.lookup, principal.key_hash, self._clock.now())
        return row is not None and row["agent_status"] != "terminated"

    def _drop(self, key_hashes: list[str] | None, user_ids: list[str] | None = None) -> None:
        for user_id in user_ids or ():
            for token_hash in self._people.pop(user_id, ()):
                self._cache.pop(token_hash, None)
        if key_hashes is None:
            self._cache.clear()
            self._derived.clear()
            self._people.clear()
        for h in key_hashes or ():
            self._cache.pop(h, None)
            for token_hash in self._derived.pop(h, ()):
                self._cache.pop(token_hash, None)


def principal_of_key(row: dict[str, Any], key_hash: str) -> Principal:
    """The principal of a live stored key (``key_ops.lookup``'s row)."""
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


def _tenant_of(user: dict[str, Any], ref: str) -> str | None:
    """The id of the tenant ``ref`` (an id or a name, as a claim gives it) among the person's memberships."""
    return ref if ref in user["memberships"] else user["names"].get(ref)


def _same_roles(user: dict[str, Any], roles: list[tuple[str, str]]) -> bool:
    """Whether the person's memberships are exactly what the claims give."""
    return len(roles) == len(user["memberships"]) and all(user["memberships"].get(_tenant_of(user, ref) or "") == role for ref, role in roles)
