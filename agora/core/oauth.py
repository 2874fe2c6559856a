"""The hub as its own OAuth 2.0 authorization server, so MCP clients that speak OAuth (MCP's authorization spec) can
connect without a pasted header: API keys stay the credential.

The ``mcp`` SDK's handlers speak the protocol (client registration, PKCE, redirect and scope checks, error answers);
this is their storage and the one decision they leave to the hub: a person approves a client on the console's
consent page (``transports/console/oauth.py``) by pasting an API key or agent token, or as the key they are signed
in with. The tokens then stand for that key: the store keeps only SHA-256 hashes and the key's hash, the
``Authenticator`` resolves an access token to the key's principal narrowed to the granted scopes, and revoking the
key ends every token granted with it. Admin keys are never handed to a client. Codes are one-time and live five
minutes, access tokens ``access_seconds``, refresh tokens ``refresh_seconds`` and rotate on every use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from sqlalchemy import Connection

from agora.store import Store
from agora.store.ops import audit as audit_ops
from agora.store.ops import oauth as oauth_ops
from agora_sdk.errors import PermissionDenied, Unauthenticated

from .auth import ACCESS_TOKEN_PREFIX, Principal, hash_key
from .authn import Authenticator
from .clock import Clock
from .ids import new_id
from .services.audit import entry_by

REFRESH_TOKEN_PREFIX = "agora_ort_"
CONSENT_PATH = "/ui/oauth/authorize"
REQUEST_SECONDS = 600  # an authorization request waits this long for the person's answer
CODE_SECONDS = 300


class Code(AuthorizationCode):
    key_hash: str


class Refresh(RefreshToken):
    key_hash: str


@dataclass(frozen=True)
class Consent:
    """What the consent page shows: who asks, for what, and where the answer goes."""

    client: OAuthClientInformationFull
    redirect_uri: str
    scopes: list[str] | None
    state: str | None


class OAuthServer:
    """The SDK's ``OAuthAuthorizationServerProvider``, on the hub's store, plus the consent page's decisions."""

    def __init__(self, store: Store, auth: Authenticator, clock: Clock, access_seconds: float, refresh_seconds: float):
        self._store = store
        self._auth = auth
        self._clock = clock
        self.access_seconds = int(access_seconds)
        self.refresh_seconds = int(refresh_seconds)

    # -- clients (RFC 7591) --------------------------------------------------------------------------------------

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        if not client_id or len(client_id) > 64:
            return None
        info = await self._store.read(oauth_ops.client, client_id)
        return OAuthClientInformationFull.model_validate(info) if info else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        info = client_info.model_dump(mode="json", exclude_none=True)
        await self._store.write(oauth_ops.insert_client, client_info.client_id, info, self._clock.now())

    # -- authorization: a request waits for the person on the consent page --------------------------------------

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        request = secrets.token_urlsafe(32)
        row = {
            "request_hash": hash_key(request),
            "client_id": client.client_id,
            "params": params.model_dump(mode="json"),
            "expires_at": self._clock.now() + timedelta(seconds=REQUEST_SECONDS),
        }
        await self._store.write(oauth_ops.insert_grant, row)
        return f"{CONSENT_PATH}?request={request}"

    async def consent(self, request: str) -> Consent | None:
        """The pending authorization request a consent page shows; None once answered, expired, or never made."""
        if not request or len(request) > 128:
            return None
        grant = await self._store.read(oauth_ops.pending_grant, hash_key(request), self._clock.now())
        client = await self.get_client(grant["client_id"]) if grant else None
        if grant is None or client is None:
            return None
        params = grant["params"]
        return Consent(client, params["redirect_uri"], params.get("scopes"), params.get("state"))

    async def approve(self, request: str, principal: Principal, request_id: str) -> str | None:
        """The person allowed the request as ``principal``: the redirect carrying the code (None: already answered).
        The grant is in the audit trail (``oauth_granted``, the client as its target), in the key's tenant."""
        consent = await self.consent(request)
        if consent is None:
            return None
        if principal.is_admin:
            raise PermissionDenied("an admin key is not handed to an OAuth client; approve with a tenant's key or an agent token")
        if principal.key_hash is None:
            raise Unauthenticated("this sign-in has no key to grant")
        code = secrets.token_urlsafe(32)
        now = self._clock.now()
        key_hash = principal.key_hash
        about = {"client_name": consent.client.client_name, "redirect_uri": consent.redirect_uri, "scopes": consent.scopes}
        entry = entry_by(principal, request_id, "oauth_granted", consent.client.client_id, principal.tenant_id, "", now, about)

        def grant(conn: Connection) -> bool:
            if not oauth_ops.approve_grant(conn, hash_key(request), key_hash, hash_key(code), now + timedelta(seconds=CODE_SECONDS), now):
                return False
            audit_ops.append(conn, entry)
            return True

        approved = await self._store.write(grant)
        return construct_redirect_uri(consent.redirect_uri, code=code, state=consent.state) if approved else None

    async def deny(self, request: str) -> str | None:
        """The person refused: the redirect telling the client so (None: already answered)."""
        consent = await self.consent(request)
        if consent is None or not await self._store.write(oauth_ops.drop_grant, hash_key(request)):
            return None
        return construct_redirect_uri(
            consent.redirect_uri, error="access_denied", error_description="the person declined", state=consent.state
        )

    # -- tokens --------------------------------------------------------------------------------------------------

    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> Code | None:
        row = await self._store.read(oauth_ops.code, hash_key(authorization_code), self._clock.now())
        if row is None or row["client_id"] != client.client_id:
            return None
        params = row["params"]
        return Code(
            code=authorization_code,
            scopes=params.get("scopes") or [],
            expires_at=row["expires_at"].timestamp(),
            client_id=row["client_id"],
            code_challenge=params["code_challenge"],
            redirect_uri=params["redirect_uri"],
            redirect_uri_provided_explicitly=params["redirect_uri_provided_explicitly"],
            resource=params.get("resource"),
            key_hash=row["key_hash"],
        )

    async def exchange_authorization_code(self, client: OAuthClientInformationFull, authorization_code: Code) -> OAuthToken:
        scopes = await self._granted(authorization_code.key_hash, authorization_code.scopes or None)
        token, rows = self._pair(client.client_id, authorization_code.key_hash, scopes, authorization_code.resource)
        if not await self._store.write(oauth_ops.redeem_code, hash_key(authorization_code.code), rows):
            raise TokenError("invalid_grant", "the authorization code was used already")
        return token

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> Refresh | None:
        row = await self._store.read(oauth_ops.token, hash_key(refresh_token), "refresh", self._clock.now())
        if row is None or row["client_id"] != client.client_id:
            return None
        return Refresh(
            token=refresh_token, client_id=row["client_id"], scopes=row["scopes"], expires_at=int(row["expires_at"].timestamp()),
            resource=row["resource"], key_hash=row["key_hash"],
        )

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: Refresh, scopes: list[str]) -> OAuthToken:
        granted = await self._granted(refresh_token.key_hash, scopes or refresh_token.scopes)
        token, rows = self._pair(client.client_id, refresh_token.key_hash, granted, refresh_token.resource)
        ended = await self._store.write(oauth_ops.rotate, hash_key(refresh_token.token), rows)
        if ended is None:
            raise TokenError("invalid_grant", "the refresh token was used already")
        self._auth.forget(ended)  # the old access token too
        return token

    async def load_access_token(self, token: str) -> AccessToken | None:
        row = await self._store.read(oauth_ops.token, hash_key(token), "access", self._clock.now())
        if row is None:
            return None
        return AccessToken(token=token, client_id=row["client_id"], scopes=row["scopes"], expires_at=int(row["expires_at"].timestamp()), resource=row["resource"])

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        """Revoking either token of a pair ends both, here and in every replica's principal cache."""
        ended = await self._store.write(oauth_ops.revoke_pair, hash_key(token.token))
        if ended:
            self._auth.forget(ended)

    async def purge_expired(self) -> int:
        return await self._store.write(oauth_ops.purge_expired, self._clock.now())

    async def _granted(self, key_hash: str, asked: list[str] | None) -> list[str]:
        """The scopes a token gets: those asked for that the key still has (all the key has when none were asked)."""
        try:
            principal = await self._auth.principal_for_hash(key_hash)
        except Unauthenticated:
            raise TokenError("invalid_grant", "the key this grant stands for was revoked") from None
        return sorted(principal.scopes if asked is None else principal.scopes & set(asked))

    def _pair(self, client_id: str, key_hash: str, scopes: list[str], resource: str | None) -> tuple[OAuthToken, list[dict[str, Any]]]:
        access, refresh = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32), REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        now, pair = self._clock.now(), new_id("oat")
        common = {"pair_id": pair, "client_id": client_id, "key_hash": key_hash, "scopes": scopes, "resource": resource}
        rows = [
            {**common, "token_hash": hash_key(access), "kind": "access", "expires_at": _after(now, self.access_seconds)},
            {**common, "token_hash": hash_key(refresh), "kind": "refresh", "expires_at": _after(now, self.refresh_seconds)},
        ]
        return OAuthToken(access_token=access, expires_in=self.access_seconds, scope=" ".join(scopes), refresh_token=refresh), rows


def _after(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
