"""Local accounts: a person's password (argon2id), optional TOTP second factor with recovery codes, one-time sign-up
links, and the key a signed-in person acts through.

A person signed in to a tenant acts through an API key minted for that session: limited to their membership's role,
carrying their user id, expiring with the session. So every door checks a person exactly as it checks a key, the
audit log names them (``user:<id>``), and removing them (or their membership) revokes those keys on every replica at
once through the authenticator's revocation event. The key's secret is never shown to anyone: only the console
session holds its hash.

Password sign-in is braked like key checks (``Throttle``): per source address and per account, slowed down after a
few failures, then locked out.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from agora.limits import Throttle
from agora.store import Store
from agora.store.ops import keys as key_ops
from agora.store.ops import users as user_ops
from agora_sdk.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated

from .auth import ROLE_SCOPES, PrincipalKind, display_prefix, generate_key, hash_key
from .clock import Clock

PASSWORD_MIN = 12
PASSWORD_MAX = 256  # argon2 takes any length; a bound keeps one sign-in's cost bounded
RECOVERY_CODES = 10
_HASHER = PasswordHasher()  # argon2id with the library's recommended parameters (RFC 9106's second choice)


@functools.cache
def _dummy_hash() -> str:
    """Compared against when the email is unknown, so that a wrong email costs what a wrong password does (made at
    the first sign-in, not at every hub's start)."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    check_password(password)
    return _HASHER.hash(password)


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidArgument(
            f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters", details={"field": "password"}
        )


def link_token() -> tuple[str, str]:
    """A sign-up link's secret and the hash the store keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_second_factor() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code or pasted)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def totp_ok(secret: str, code: str) -> bool:
    """The code of this 30-second step, or of the one before or after (clocks drift)."""
    return pyotp.TOTP(secret).verify(code.strip().replace(" ", ""), valid_window=1)


def recovery_codes() -> tuple[list[str], list[str]]:
    """Ten one-time codes to show once, and their hashes to keep."""
    codes = [f"{secrets.token_hex(4)}-{secrets.token_hex(4)}" for _ in range(RECOVERY_CODES)]
    return codes, [token_hash(c) for c in codes]


@dataclass(frozen=True)
class SignedIn:
    user: dict[str, Any]
    key: str  # the session key's secret: handed straight to the console session, never shown
    tenant_id: str | None  # None: a hub administrator's session
    role: str | None


class Accounts:
    def __init__(self, store: Store, throttle: Throttle | None, clock: Clock):
        self._store, self._throttle, self._clock = store, throttle, clock

    async def verify(self, email: str, password: str, code: str, client: str) -> dict[str, Any]:
        """The user whose email, password (and second factor, if they set one) these are; else ``Unauthenticated``,
        counted against the address and the account (``RateLimited`` once either is braked)."""
        email = email.strip().lower()
        sources = [client, f"account:{email}"]
        if self._throttle is not None:
            for source in sources:
                await self._throttle.before_key_check(source)
        user = await self._store.read(user_ops.by_email, email) if email and len(email) <= 254 else None
        try:
            if user is None or user["removed_at"] is not None or user["password_hash"] is None:
                _HASHER.verify(_dummy_hash(), password[:PASSWORD_MAX])
                raise Unauthenticated("wrong email or password")
            _HASHER.verify(user["password_hash"], password[:PASSWORD_MAX])
            if user["totp_secret"] and not await self._second_factor(user, code):
                raise Unauthenticated("wrong or missing second-factor code")
        except (VerificationError, InvalidHashError):
            await self._failed(sources)
            raise Unauthenticated("wrong email or password") from None
        except Unauthenticated:
            await self._failed(sources)
            raise
        if _HASHER.check_needs_rehash(user["password_hash"]):
            await self._store.write(user_ops.set_password_hash, user["user_id"], _HASHER.hash(password))
        return user

    async def _second_factor(self, user: dict[str, Any], code: str) -> bool:
        if not code:
            return False
        if totp_ok(user["totp_secret"], code):
            return True
        return await self._store.write(user_ops.use_recovery_code, user["user_id"], token_hash(code.strip().lower()))

    async def _failed(self, sources: list[str]) -> None:
        if self._throttle is not None:
            for source in sources:
                await self._throttle.key_check_failed(source)

    async def start_session(self, user: dict[str, Any], tenant: str | None, lifetime: timedelta) -> SignedIn:
        """A key for ``user``'s session in ``tenant`` (their first membership when None; a hub administrator with no
        tenant named gets an admin session), limited to their role there and ending with the session."""
        now = self._clock.now()
        held = (await self._store.read(user_ops.memberships_of, [user["user_id"]]))[user["user_id"]]
        if tenant is None and user["hub_admin"]:
            return await self._mint(user, None, None, now, lifetime)
        chosen = next((m for m in held if tenant in (None, m["tenant_id"], m["tenant_name"])), None)
        if chosen is None:
            if tenant is not None:
                raise PermissionDenied(f"you are not a member of '{tenant}'", details={"field": "tenant"})
            raise FailedPrecondition("you are a member of no tenant yet: ask a tenant's admin to add you", details={"reason": "no_membership"})
        return await self._mint(user, chosen["tenant_id"], chosen["role"], now, lifetime)

    async def _mint(self, user: dict[str, Any], tenant_id: str | None, role: str | None, now: datetime, lifetime: timedelta) -> SignedIn:
        secret = generate_key()
        kind = PrincipalKind.admin if tenant_id is None else PrincipalKind.customer
        scopes = sorted(ROLE_SCOPES[role]) if role else []
        fields = {
            "key_hash": hash_key(secret), "prefix": display_prefix(secret), "kind": kind.value,
            "name": f"session of {user['email']}"[:200], "tenant_id": tenant_id or "default", "agent_id": None,
            "scopes": scopes, "created_by": f"user:{user['user_id']}", "now": now, "role": role,
            "user_id": user["user_id"], "expires_at": now + lifetime,
        }  # fmt: skip
        await self._store.write(key_ops.insert_fields, fields)
        return SignedIn(user, secret, tenant_id, role)
