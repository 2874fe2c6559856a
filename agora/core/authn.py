"""Turning an ``Authorization: Bearer`` header into a Principal, with a short cache.

The cache keeps a hot key from costing a database read per call. Revocations made through this
process drop the entry at once; on other replicas they apply within ``ttl`` seconds.
"""

from __future__ import annotations

import hmac
import time

from agora.store import Store
from agora.store.ops import keys as key_ops
from agora_sdk.errors import Unauthenticated

from .auth import KEY_PREFIX, Principal, PrincipalKind, hash_key

BOOTSTRAP_KEY_ID = "bootstrap"


class Authenticator:
    def __init__(self, store: Store, bootstrap_admin_key: str, ttl: float = 5.0, max_entries: int = 100_000):
        self._store = store
        self._bootstrap_hash = hash_key(bootstrap_admin_key)
        self._ttl = ttl
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthenticated("missing 'Authorization: Bearer <api key>' header")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("the Authorization header must be 'Bearer <api key>'")
        key_hash = hash_key(token)
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached and cached[0] > now:
            return cached[1]
        principal = await self._load(key_hash, token)
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[key_hash] = (now + self._ttl, principal)
        return principal

    async def _load(self, key_hash: str, token: str) -> Principal:
        if hmac.compare_digest(key_hash, self._bootstrap_hash):
            return Principal(PrincipalKind.admin, BOOTSTRAP_KEY_ID, "default", frozenset())
        row = await self._store.read(key_ops.lookup, key_hash) if token.startswith(KEY_PREFIX) else None
        if row is None:
            raise Unauthenticated("the API key is not valid (unknown or revoked)")
        return Principal(
            kind=PrincipalKind(row["kind"]),
            key_id=row["key_id"],
            tenant_id=row["tenant_id"] or "default",
            scopes=frozenset(row["scopes"]),
            agent_id=row["agent_id"],
            agent_status=row["agent_status"],
        )

    def forget(self, key_hashes: list[str] | None = None) -> None:
        """Drop cached principals (all of them when no hashes are given)."""
        if key_hashes is None:
            self._cache.clear()
        for h in key_hashes or ():
            self._cache.pop(h, None)
