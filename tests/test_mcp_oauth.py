"""OAuth for MCP clients: the hub publishes where to sign in (RFC 9728, RFC 8414), registers clients (RFC 7591),
lets a person approve one with an API key on the consent page, and the tokens it issues act as that key."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from .conftest import call, new_tenant, ok, unique, until
from .hubproc import HubProcess

REDIRECT = "http://127.0.0.1:9/callback"  # never reached: the test reads the redirect's Location


def consent(hub: HubProcess, authorization_url: str, key: str | None, decision: str = "allow") -> httpx.Response:
    """What a person's browser does: open the authorization URL, land on the consent page, answer it."""
    with httpx.Client(base_url=hub.url, timeout=30) as browser:
        page = browser.get(authorization_url, follow_redirects=True)
        assert page.status_code == 200, page.text
        request = re.search(r'name="request" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        return browser.post("/ui/oauth/authorize", data={"request": request, "key": key or "", "decision": decision})


def redirected(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 303, answer.text
    location = urlsplit(answer.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    return {k: v[0] for k, v in parse_qs(location.query).items()}


class Memory:
    """The MCP client's token storage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def test_mcp_says_where_to_sign_in(sqlite_hub):
    answer = httpx.post(f"{sqlite_hub.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and "invalid_token" not in challenge
    metadata_url = re.search(r'resource_metadata="([^"]+)"', challenge).group(1)  # type: ignore[union-attr]
    assert metadata_url == f"{sqlite_hub.url}/.well-known/oauth-protected-resource/mcp"
    refused = httpx.post(f"{sqlite_hub.url}/mcp", json={}, headers={"Authorization": "Bearer agora_oat_nope"})
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["www-authenticate"]

    resource = httpx.get(metadata_url).json()
    assert resource["resource"] == f"{sqlite_hub.url}/mcp"
    assert resource["authorization_servers"] == [sqlite_hub.url]
    assert "messaging:send" in resource["scopes_supported"] and resource["bearer_methods_supported"] == ["header"]

    server = httpx.get(f"{sqlite_hub.url}/.well-known/oauth-authorization-server").json()
    assert server["issuer"] == sqlite_hub.url
    assert server["authorization_endpoint"] == f"{sqlite_hub.url}/authorize"
    assert server["token_endpoint"] == f"{sqlite_hub.url}/token"
    assert server["registration_endpoint"] == f"{sqlite_hub.url}/register"
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert set(server["grant_types_supported"]) == {"authorization_code", "refresh_token"}


async def test_an_mcp_client_signs_in_and_acts_as_the_key_it_was_given(sqlite_hub):
    """The official MCP client does the whole dance (discovery, registration, PKCE, token) and then calls tools as
    the tenant whose key the person pasted."""
    with sqlite_hub.client() as admin, new_tenant(admin, sqlite_hub) as tenant:
        key = tenant.headers["authorization"].removeprefix("Bearer ")
        pending: dict[str, Any] = {}

        async def redirect_handler(url: str) -> None:
            pending.update(redirected(consent(sqlite_hub, url, key)))

        async def callback_handler() -> AuthorizationCodeResult:
            return AuthorizationCodeResult(code=pending["code"], state=pending["state"])

        metadata = OAuthClientMetadata(client_name="test client", redirect_uris=[REDIRECT])
        storage = Memory()
        auth = OAuthClientProvider(f"{sqlite_hub.url}/mcp", metadata, storage, redirect_handler, callback_handler)
        name = unique("oauth")
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http, Client(streamable_http_client(f"{sqlite_hub.url}/mcp", http_client=http)) as client:
            registered = await client.call_tool("agora.agents.register", {"agent_name": name, "capabilities": ["x"]})
            assert not registered.is_error, registered
        assert storage.tokens is not None and storage.tokens.access_token.startswith("agora_oat_")
        assert storage.client is not None and storage.client.client_name == "test client"
        # The agent belongs to the tenant whose key was given, and nobody else sees it.
        assert ok(call(tenant, "agora.agents.get", agent=name))["agent_name"] == name
        other = new_tenant(admin, sqlite_hub)
        with other:
            assert call(other, "agora.agents.get", agent=name).status_code == 404


def _client(hub: HubProcess) -> dict[str, Any]:
    registered = httpx.post(f"{hub.url}/register", json={"client_name": "manual", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    assert registered.status_code == 201, registered.text
    return registered.json()


def _authorize(hub: HubProcess, client_id: str, key: str | None, decision: str = "allow", scope: str | None = None) -> tuple[httpx.Response, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT, "state": "s1", "code_challenge": challenge,
             "code_challenge_method": "S256"} | ({"scope": scope} if scope else {})  # fmt: skip
    url = str(httpx.URL("/authorize", params=query))
    return consent(hub, url, key, decision), verifier


def _token(hub: HubProcess, **form: str) -> httpx.Response:
    return httpx.post(f"{hub.url}/token", data=form)


def _mcp_call(hub: HubProcess, token: str, tool: str, arguments: dict[str, Any] | None = None) -> httpx.Response:
    """One stateless 2026-07-28 tools/call with ``token`` as the bearer."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2026-07-28",
               "Mcp-Method": "tools/call", "Mcp-Name": tool}  # fmt: skip
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments or {}, "_meta": meta}}
    return httpx.post(f"{hub.url}/mcp", json=body, headers=headers, timeout=30)


def _ping(hub: HubProcess, token: str) -> int:
    """The status of a read-only call made with ``token``."""
    answer = _mcp_call(hub, token, "agora.query.agents")
    assert answer.status_code != 200 or not answer.json()["result"].get("isError"), answer.text
    return answer.status_code


def test_codes_are_one_time_refresh_tokens_rotate_and_revocation_ends_the_pair(hub):
    with hub.client() as admin, new_tenant(admin, hub) as tenant:
        key = tenant.headers["authorization"].removeprefix("Bearer ")
        client = _client(hub)
        answer, verifier = _authorize(hub, client["client_id"], key)
        params = redirected(answer)
        assert params["state"] == "s1"
        exchange = {"grant_type": "authorization_code", "code": params["code"], "client_id": client["client_id"], "redirect_uri": REDIRECT}
        assert _token(hub, **exchange, code_verifier="wrong" * 10).json()["error"] == "invalid_grant"
        tokens = _token(hub, **exchange, code_verifier=verifier).json()
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
        assert _token(hub, **exchange, code_verifier=verifier).json()["error"] == "invalid_grant"  # used already
        assert _ping(hub, tokens["access_token"]) == 200

        refresh = {"grant_type": "refresh_token", "client_id": client["client_id"]}
        rotated = _token(hub, **refresh, refresh_token=tokens["refresh_token"]).json()
        assert rotated["access_token"] != tokens["access_token"]
        assert _token(hub, **refresh, refresh_token=tokens["refresh_token"]).json()["error"] == "invalid_grant"
        assert _ping(hub, tokens["access_token"]) == 401  # the old pair ended with the rotation
        assert _ping(hub, rotated["access_token"]) == 200

        revoked = httpx.post(f"{hub.url}/revoke", data={"token": rotated["refresh_token"], "client_id": client["client_id"]})
        assert revoked.status_code == 200
        assert _ping(hub, rotated["access_token"]) == 401  # revoking one token of the pair ended both


def test_a_token_has_only_the_scopes_asked_for(sqlite_hub):
    with sqlite_hub.client() as admin:
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
        client = _client(sqlite_hub)
        answer, verifier = _authorize(sqlite_hub, client["client_id"], created["key"], scope="agents:read")
        code = redirected(answer)["code"]
        tokens = _token(sqlite_hub, grant_type="authorization_code", code=code, client_id=client["client_id"], redirect_uri=REDIRECT, code_verifier=verifier).json()
        assert tokens["scope"] == "agents:read"
        # The grant is in the audit trail: who granted which client what.
        entry = ok(call(admin, "agora.admin.audit", action="oauth_granted", target_id=client["client_id"]))["entries"][0]
        assert entry["actor"] == f"customer:{created['info']['key_id']}" and entry["details"]["scopes"] == ["agents:read"]
        assert entry["details"]["client_name"] == "manual" and entry["details"]["redirect_uri"] == REDIRECT
        assert _ping(sqlite_hub, tokens["access_token"]) == 200
        refused = _mcp_call(sqlite_hub, tokens["access_token"], "agora.agents.register", {"agent_name": unique("oauth")}).json()["result"]
        assert refused["isError"] and refused["_meta"]["agora/error"]["details"]["missing_scopes"] == ["agents:write"]


def test_revoking_the_key_ends_the_tokens_granted_with_it(sqlite_hub):
    with sqlite_hub.client() as admin:
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
        client = _client(sqlite_hub)
        answer, verifier = _authorize(sqlite_hub, client["client_id"], created["key"])
        code = redirected(answer)["code"]
        tokens = _token(sqlite_hub, grant_type="authorization_code", code=code, client_id=client["client_id"], redirect_uri=REDIRECT, code_verifier=verifier).json()
        assert _ping(sqlite_hub, tokens["access_token"]) == 200
        ok(call(admin, "agora.admin.keys.revoke", key_id=created["info"]["key_id"]))
        until(lambda: _ping(sqlite_hub, tokens["access_token"]) == 401, "a token outlived its key", timeout=5)
        refreshed = _token(sqlite_hub, grant_type="refresh_token", client_id=client["client_id"], refresh_token=tokens["refresh_token"])
        assert refreshed.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("key", "status", "says"),
    [("admin", 403, "admin key is not handed"), ("agora_sk_wrong", 401, "not valid"), ("", 400, "Paste an API key")],
)
def test_the_consent_page_refuses_what_it_must(sqlite_hub, key, status, says):
    client = _client(sqlite_hub)
    answer, _ = _authorize(sqlite_hub, client["client_id"], sqlite_hub.admin_key if key == "admin" else key)
    assert answer.status_code == status and says in answer.text
    assert "location" not in answer.headers


def test_a_person_can_say_no_and_a_request_is_answered_once(sqlite_hub):
    client = _client(sqlite_hub)
    answer, _ = _authorize(sqlite_hub, client["client_id"], None, decision="deny")
    assert redirected(answer) == {"error": "access_denied", "error_description": "the person declined", "state": "s1"}
    with httpx.Client(base_url=sqlite_hub.url) as browser:
        gone = browser.get("/ui/oauth/authorize", params={"request": "no-such-request"})
        assert gone.status_code == 410 and "over" in gone.text
    unknown = httpx.get(f"{sqlite_hub.url}/authorize", params={"response_type": "code", "client_id": "nobody", "code_challenge": "x" * 43, "redirect_uri": REDIRECT})
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_request"
