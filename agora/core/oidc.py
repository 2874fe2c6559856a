"""Single sign-on with an OpenID Connect provider (Keycloak, Entra ID, Okta, Auth0, Google, Dex…).

The console signs a person in with the authorization code flow (PKCE, ``state`` and ``nonce``; Authlib makes the
request and exchanges the code), and the ID token is validated here with joserfc: signature against the issuer's
JWKS (cached; fetched again for a key id it does not have, at most once per ``REFRESH_FLOOR`` seconds, so a flood of
made-up tokens cannot make the hub hammer the provider), ``iss``, ``aud``, ``exp``, ``nbf``, ``iat`` with ``LEEWAY``
seconds of clock skew, and the ``nonce``. Only asymmetric algorithms are accepted: ``none`` and HMAC (a token signed
with the issuer's *public* key as an HMAC secret) are refused. With an audience set, the provider's JWT access tokens
are accepted as bearer tokens on every door, validated the same way (``aud`` must hold the audience).

Roles come from the claims, re-read at each sign-in: the roles claim's values (groups) map to roles through
``--oidc-role-map GROUP=ROLE[@TENANT]``; a mapping without a tenant applies to the tenant the tenant claim names;
``--oidc-default-role`` gives everyone else a role there. A person with no mapped role is refused, saying why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from agora_sdk.errors import PermissionDenied, Unauthenticated, Unavailable
from agora_sdk.wire.admin import Role

log = logging.getLogger("agora.oidc")

ASYMMETRIC = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
LEEWAY = 60  # seconds of clock skew between the provider and this hub
REFRESH_FLOOR = 30.0  # seconds between two fetches of the JWKS for an unknown key id
DISCOVERY_TTL = 3600.0  # the provider's metadata and keys are fetched again after this long
TIMEOUT = 10.0


@dataclass(frozen=True)
class RoleMapping:
    group: str
    role: Role
    tenant: str | None  # None: the tenant the tenant claim names


def parse_role_map(entries: list[str]) -> list[RoleMapping]:
    """``GROUP=ROLE[@TENANT]`` entries (also comma-separated); ValueError naming a bad one."""
    mappings = []
    for entry in (part.strip() for item in entries for part in item.split(",")):
        if not entry:
            continue
        group, sep, target = entry.rpartition("=")
        role, _, tenant = target.partition("@")
        if not sep or not group or role not in Role.__members__:
            raise ValueError(f"{entry!r}: write GROUP=ROLE[@TENANT] with ROLE one of {', '.join(Role.__members__)}")
        mappings.append(RoleMapping(group, Role(role), tenant or None))
    return mappings


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    tenant_claim: str = "tenant"
    roles_claim: str = "groups"
    role_map: tuple[RoleMapping, ...] = ()
    default_role: Role | None = None
    audience: str | None = None
    name: str = ""  # how the sign-in page names the provider

    @property
    def display_name(self) -> str:
        return self.name or httpx.URL(self.issuer).host


@dataclass(frozen=True)
class Identity:
    """A person as the provider's claims describe them, with the roles those claims map to."""

    issuer: str
    subject: str
    email: str
    name: str
    roles: list[tuple[str, Role]]  # (tenant id or name, role), first the one to sign in to
    expires_at: float | None = None  # the token's exp


@dataclass
class _Cached:
    metadata: dict[str, Any] | None = None
    keys: KeySet | None = None
    fetched_at: float = 0.0
    keys_fetched_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one fetch of the metadata at a time
    keys_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one fetch of the keys at a time


class IdentityProvider:
    def __init__(self, settings: OidcSettings, http: httpx.AsyncClient | None = None):
        self.settings = settings
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._cached = _Cached()

    async def close(self) -> None:
        await self._http.aclose()

    # -- the provider's metadata and keys ------------------------------------------------------------------------

    async def metadata(self, max_age: float = DISCOVERY_TTL) -> dict[str, Any]:
        """The provider's discovery document (``/.well-known/openid-configuration``), cached up to ``max_age``
        seconds; ``Unavailable`` when the provider cannot be reached."""
        cached = self._cached
        if cached.metadata is not None and time.monotonic() - cached.fetched_at < max_age:
            return cached.metadata
        async with cached.lock:
            if cached.metadata is None or time.monotonic() - cached.fetched_at >= max_age:
                url = self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration"
                found = await self._get_json(url)
                if found.get("issuer") != self.settings.issuer:
                    raise Unavailable(f"the identity provider's discovery names issuer {found.get('issuer')!r}, not {self.settings.issuer!r}")
                cached.metadata, cached.fetched_at = found, time.monotonic()
        return cached.metadata  # type: ignore[return-value]

    async def _keys(self, kid: str | None) -> KeySet:
        """The provider's signing keys; fetched again when ``kid`` is not among them (no more often than the floor)."""
        cached = self._cached
        if self._needs_keys(kid):
            async with cached.keys_lock:
                if self._needs_keys(kid):  # not fetched while this call waited for the lock
                    jwks_uri = (await self.metadata())["jwks_uri"]
                    try:
                        cached.keys = KeySet.import_key_set(await self._get_json(jwks_uri))  # type: ignore[arg-type]
                    except (JoseError, ValueError, TypeError) as exc:
                        raise Unavailable(f"the identity provider's keys could not be read: {exc}") from None
                    cached.keys_fetched_at = time.monotonic()
                    log.info("identity provider's keys fetched", extra={"issuer": self.settings.issuer, "kid": kid})
        assert cached.keys is not None
        return cached.keys

    def _needs_keys(self, kid: str | None) -> bool:
        cached = self._cached
        if cached.keys is None:
            return True
        age = time.monotonic() - cached.keys_fetched_at
        return age >= DISCOVERY_TTL or (kid is not None and not _has_kid(cached.keys, kid) and age >= REFRESH_FLOOR)

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url)
            response.raise_for_status()
            found = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"the identity provider at {self.settings.issuer} cannot be reached: {exc}") from None
        if not isinstance(found, dict):
            raise Unavailable(f"the identity provider answered {url} with something other than a JSON object")
        return found

    # -- the authorization code flow -----------------------------------------------------------------------------

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            self.settings.client_id, self.settings.client_secret, scope=self.settings.scopes, redirect_uri=redirect_uri,
            code_challenge_method="S256", timeout=TIMEOUT,
        )  # fmt: skip

    async def authorization_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser. The provider is asked for its metadata afresh (at most once a second), so
        a provider that is down is said so here rather than by the browser's own error page."""
        endpoint = (await self.metadata(max_age=1.0))["authorization_endpoint"]
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(endpoint, state=state, code_verifier=verifier, nonce=nonce)
        return str(url)

    async def sign_in(self, code: str, redirect_uri: str, verifier: str, nonce: str) -> tuple[Identity, str]:
        """Exchange the code for tokens; (the person the validated ID token names, the ID token)."""
        endpoint = (await self.metadata())["token_endpoint"]
        try:
            async with self._client(redirect_uri) as client:
                tokens = await client.fetch_token(endpoint, code=code, code_verifier=verifier)
        except httpx.HTTPError as exc:
            raise Unavailable(f"the identity provider at {self.settings.issuer} cannot be reached: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - Authlib's OAuthError for a refused code (used, expired, forged)
            raise Unauthenticated(f"the identity provider refused the sign-in: {exc}") from None
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("the identity provider answered without an ID token")
        claims = await self._validated(id_token, audience=self.settings.client_id, nonce=nonce)
        return self.identity(claims), id_token

    async def end_session_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """Where to send a signing-out person so the provider ends its session too (RP-initiated logout), if it can."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except Unavailable:
            return None
        if not endpoint:
            return None
        params = {"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": self.settings.client_id}
        if id_token:
            params["id_token_hint"] = id_token
        return str(httpx.URL(endpoint, params=params))

    # -- tokens ----------------------------------------------------------------------------------------------------

    async def access_token(self, token: str) -> Identity:
        """The person a JWT access token for ``--oidc-audience`` stands for; ``Unauthenticated`` saying why not."""
        assert self.settings.audience is not None
        return self.identity(await self._validated(token, audience=self.settings.audience, nonce=None))

    async def _validated(self, token: str, audience: str, nonce: str | None) -> dict[str, Any]:
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(f"the token is not a signed JWT: {exc}") from None
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC:  # none, HS256 with the public key as the secret, …
            raise Unauthenticated(f"the token's algorithm {algorithm!r} is not accepted (only {', '.join(ASYMMETRIC)})")
        keys = await self._keys(header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=ASYMMETRIC)
        except JoseError as exc:
            raise Unauthenticated(f"the token's signature is not the identity provider's: {exc.description or exc}") from None
        expected: dict[str, Any] = {
            "iss": {"essential": True, "value": self.settings.issuer},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        if nonce is not None:
            expected["nonce"] = {"essential": True, "value": nonce}
        claims = decoded.claims
        try:
            JWTClaimsRegistry(leeway=LEEWAY, **expected).validate(claims)
        except JoseError as exc:
            raise Unauthenticated(f"the token is not valid here: {exc.description or exc}") from None
        audiences = claims.get("aud")
        if audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise Unauthenticated(f"the token is not for this hub (its audience is {audiences!r})")
        return claims

    def identity(self, claims: dict[str, Any]) -> Identity:
        email = str(claims.get("email") or "").lower()
        if not email:
            raise Unauthenticated("the identity provider gave no email for this person (ask for the 'email' scope)")
        exp = claims.get("exp")
        return Identity(
            issuer=str(claims["iss"]), subject=str(claims["sub"]), email=email[:254],
            name=str(claims.get("name") or claims.get("preferred_username") or "")[:200],
            roles=self.roles(claims), expires_at=float(exp) if isinstance(exp, (int, float)) else None,
        )  # fmt: skip

    def roles(self, claims: dict[str, Any]) -> list[tuple[str, Role]]:
        """(tenant, role) for each tenant the claims give a role in, strongest role per tenant; PermissionDenied
        saying why when none."""
        s = self.settings
        tenant_claim = claims.get(s.tenant_claim)
        tenant = str(tenant_claim) if isinstance(tenant_claim, (str, int)) and str(tenant_claim) else None
        raw = claims.get(s.roles_claim) or []
        groups = {raw} if isinstance(raw, str) else {str(g) for g in raw} if isinstance(raw, list) else set()
        order = list(Role)
        found: dict[str, Role] = {}
        for mapping in s.role_map:
            where = mapping.tenant or tenant
            if mapping.group in groups and where is not None:
                if where not in found or order.index(mapping.role) > order.index(found[where]):
                    found[where] = mapping.role
        if not found and s.default_role is not None and tenant is not None:
            found[tenant] = s.default_role
        if not found:
            why = f"no tenant in its '{s.tenant_claim}' claim" if tenant is None and not any(m.tenant for m in s.role_map) else (
                f"none of its '{s.roles_claim}' ({', '.join(sorted(groups)) or 'none'}) maps to a role"
            )
            raise PermissionDenied(f"the identity provider signed you in, but Agora has no role for you: {why}", details={"reason": "no_role"})
        return list(found.items())


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (JoseError, ValueError, KeyError):
        return False
    return True
