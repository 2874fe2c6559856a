"""Single sign-on (issue 57) against a real OpenID Connect provider (npm's oidc-provider on 127.0.0.1): people sign in
through its login page with the roles its groups map to, its JWT access tokens act as them on REST, MCP and A2A, and
every forged, expired, misdirected or replayed token or sign-in is refused with a clear error, changing nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from joserfc import jwt
from joserfc.jwk import RSAKey

from ..conftest import call, expect_error, fresh_postgres_url, ok, unique
from ..hubproc import HubProcess
from ..sso_provider import Provider, access_token, claims_token, sso_hub, through_login
from ..test_a2a import a2a_client, message
from ..test_mcp import mcp_client


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def sso(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, Provider]]:
    """A hub on each engine, with a provider of its own."""
    database_url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    yield from sso_hub(tmp_path_factory.mktemp(f"sso-{request.param}"), database_url)


def console_sign_in(hub: HubProcess, provider: Provider, login: str, next_: str = "/ui/account") -> tuple[httpx.Client, httpx.Response]:
    """A browser (without scripts) signing in through the provider's own login page; the callback's answer."""
    client = httpx.Client(follow_redirects=False, timeout=30, headers={"Accept": "text/html"})
    start = client.get(f"{hub.url}/ui/oidc/start", params={"next": next_})
    assert start.status_code == 303 and start.headers["location"].startswith(provider.issuer + "/auth?")
    back = through_login(client, start.headers["location"], login, hub.url)
    return client, client.get(back)


def acting_as(client: httpx.Client, hub: HubProcess) -> str:
    page = client.get(f"{hub.url}/ui/account")
    assert page.status_code == 200, page.text[:300]
    return re.search(r'title="Signed in as">([^<]*)<', page.text).group(1)  # type: ignore[union-attr]


def test_people_sign_in_through_the_provider_with_the_roles_their_groups_map_to(sso) -> None:
    hub, provider = sso
    assert "Sign in with Test IdP" in httpx.get(f"{hub.url}/ui/sign-in").text
    alice, answer = console_sign_in(hub, provider, "alice", "/ui/agents")
    assert answer.status_code == 200 and 'content="0;url=/ui/agents"' in answer.text  # on to where she was going
    assert re.fullmatch(r"alice@acme\.example · viewer · ten_\w+", acting_as(alice, hub))
    oscar, _ = console_sign_in(hub, provider, "oscar")
    assert re.fullmatch(r"oscar@acme\.example · operator · ten_\w+", acting_as(oscar, hub))  # the strongest of his groups
    carol, _ = console_sign_in(hub, provider, "carol")
    assert re.fullmatch(r"carol@globex\.example · admin · ten_\w+", acting_as(carol, hub))
    with hub.client() as admin:
        people = {u["email"]: u for u in ok(call(admin, "agora.users.list"))["users"]}
    assert people["alice@acme.example"]["single_sign_on"] == provider.issuer
    assert people["oscar@acme.example"]["memberships"][0]["tenant_name"] == "acme"
    assert people["carol@globex.example"]["memberships"][0]["tenant_name"] == "globex"

    # A person whose groups map to no role is refused, with a page that says why; nothing is made for them.
    nora, refused = console_sign_in(hub, provider, "nora")
    assert refused.status_code == 403 and "no role for you" in refused.text and "interns" in refused.text
    assert nora.get(f"{hub.url}/ui/account").status_code == 303

    # Signing out ends the provider's session too (RP-initiated logout), back to the sign-in page.
    out = alice.post(f"{hub.url}/ui/sign-out", data={"csrf_token": _csrf(alice)})
    assert out.status_code == 303 and out.headers["location"].startswith(provider.issuer + "/session/end?")
    assert "id_token_hint=" in out.headers["location"] and alice.get(f"{hub.url}/ui/account").status_code == 303


def _csrf(client: httpx.Client) -> str:
    return next(c.value for c in client.cookies.jar if "csrf" in c.name)  # the provider's cookies share the host


def test_a_sign_in_cannot_be_replayed_planted_or_sent_elsewhere(sso) -> None:
    hub, provider = sso
    # The state works once: the callback's URL again finds nothing.
    client = httpx.Client(follow_redirects=False, timeout=30)
    start = client.get(f"{hub.url}/ui/oidc/start", params={"next": "https://evil.example/steal"})
    back = through_login(client, start.headers["location"], "oscar", hub.url)
    first = client.get(back)
    assert first.status_code == 200 and 'content="0;url=/ui"' in first.text  # not to another site
    replayed = client.get(back)
    assert replayed.status_code == 401 and "used already" in replayed.text

    # A code planted into another browser (login CSRF): its state was begun elsewhere, so it is refused.
    victim = httpx.Client(follow_redirects=False, timeout=30)
    attacker = httpx.Client(follow_redirects=False, timeout=30)
    theirs = through_login(attacker, attacker.get(f"{hub.url}/ui/oidc/start").headers["location"], "carol", hub.url)
    planted = victim.get(theirs)
    assert planted.status_code == 401 and victim.get(f"{hub.url}/ui/account").status_code == 303

    # A code from one sign-in sent with another's state (code injection): the ID token's nonce is the other's.
    mixer = httpx.Client(follow_redirects=False, timeout=30)
    one = through_login(mixer, mixer.get(f"{hub.url}/ui/oidc/start").headers["location"], "oscar", hub.url)
    code = parse_qs(urlsplit(one).query)["code"][0]
    other = mixer.get(f"{hub.url}/ui/oidc/start").headers["location"]
    state = parse_qs(urlsplit(other).query)["state"][0]
    injected = mixer.get(f"{hub.url}/ui/oidc/callback", params={"code": code, "state": state})
    assert injected.status_code == 401 and mixer.get(f"{hub.url}/ui/account").status_code == 303

    # No state, no code, an error from the provider: each says so.
    assert mixer.get(f"{hub.url}/ui/oidc/callback", params={"code": "x"}).status_code == 401
    denied = mixer.get(f"{hub.url}/ui/oidc/callback", params={"error": "access_denied", "error_description": "the person said no"})
    assert denied.status_code == 401 and "the person said no" in denied.text


async def test_the_providers_access_tokens_act_as_the_person_on_every_door(sso) -> None:
    hub, provider = sso
    oscar, alice = access_token(provider, "oscar"), access_token(provider, "alice")
    with hub.client(oscar) as rest:
        me = ok(call(rest, "agora.users.me"))
        assert me["user"]["email"] == "oscar@acme.example" and me["role"] == "operator" and me["label"].startswith("user:usr_")
        ok(call(rest, "agora.messaging.send", to_agent="broadcast", content="hello from oscar"))
    with hub.client(alice) as rest:
        refused = expect_error(call(rest, "agora.messaging.send", to_agent="broadcast", content="x"), 403, "permission_denied")
        assert refused["details"]["role"] == "viewer"
    with hub.client() as admin:
        dev = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant="acme", role="developer"))["key"]
    with hub.client(dev) as developer:
        front = ok(call(developer, "agora.agents.register", agent_name=unique("front"), a2a={"access": "private"}))

    async with mcp_client(hub, alice) as mcp:
        assert not (await mcp.call_tool("agora.users.me", {})).is_error
        denied = await mcp.call_tool("agora.messaging.send", {"to_agent": "broadcast", "content": "x"})
        assert denied.is_error and denied.meta["agora/error"]["code"] == "permission_denied"
    request = message("hello", "sso")
    request.configuration.return_immediately = True
    async with a2a_client(f"{hub.url}/a2a/agents/{front['agent_id']}", key=oscar) as a2a:
        sent = [e async for e in a2a.send_message(request)]
        assert sent[-1].task.id
        assert (await a2a.get_task(pb.GetTaskRequest(id=sent[-1].task.id))).id == sent[-1].task.id

    # The MCP door names the provider as an authorization server, so MCP clients can sign in with it directly.
    metadata = httpx.get(f"{hub.url}/.well-known/oauth-protected-resource/mcp").json()
    assert metadata["authorization_servers"][0] == provider.issuer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def test_forged_and_misdirected_tokens_are_refused(sso) -> None:
    hub, provider = sso
    key = provider.key
    sign = lambda claims, with_key=key, kid="test-key-1": jwt.encode({"alg": "RS256", "kid": kid}, claims, with_key)  # noqa: E731
    stranger = RSAKey.generate_key(2048, parameters={"kid": "test-key-1"}, private=True)
    public_pem = key.as_pem(private=False)
    hs = _unsigned({"alg": "HS256", "kid": "test-key-1", "typ": "JWT"}, claims_token(provider))
    hs_token = f"{hs}.{_b64(hmac.new(public_pem, hs.encode(), hashlib.sha256).digest())}"
    now = int(time.time())
    cases = {
        "forged (another key, same kid)": (sign(claims_token(provider), stranger), "signature"),
        "unknown kid": (sign(claims_token(provider), stranger, "no-such-key"), "signature"),
        "expired": (sign(claims_token(provider, exp=now - 600, iat=now - 1200)), "not valid"),
        "not yet valid": (sign(claims_token(provider, nbf=now + 600)), "not valid"),
        "wrong issuer": (sign(claims_token(provider, iss="http://127.0.0.1:1")), "not valid"),
        "wrong audience": (sign(claims_token(provider, aud="http://elsewhere.example/api")), "not for this hub"),
        "alg none": (_unsigned({"alg": "none"}, claims_token(provider)) + ".", "algorithm"),
        "HMAC with the public key": (hs_token, "algorithm"),
        "not a JWT": ("a.b.c", "not a signed JWT"),
    }
    assert sign(claims_token(provider)).count(".") == 2  # the same, well made, is taken:
    with hub.client(sign(claims_token(provider))) as valid:
        assert ok(call(valid, "agora.users.me"))["user"]["email"] == "alice@acme.example"
    for case, (token, says) in cases.items():
        with hub.client(token) as client:
            error = expect_error(call(client, "agora.messaging.send", to_agent="broadcast", content="x"), 401, "unauthenticated")
            assert says in error["message"], (case, error)
    log = (hub.data_dir / "hub.log").read_text()
    assert provider.key.as_dict(private=True)["d"] not in log and hs_token not in log  # no secret or token is logged


def test_a_removed_person_is_refused_at_once_and_cannot_sign_in_again(sso) -> None:
    hub, provider = sso
    token = access_token(provider, "carol")
    carol, _ = console_sign_in(hub, provider, "carol")
    with hub.client(token) as api:
        ok(call(api, "agora.users.me"))
        with hub.client() as admin:
            ok(call(admin, "agora.users.remove", user="carol@globex.example"))
        expect_error(call(api, "agora.users.me"), 401, "unauthenticated")
    assert carol.get(f"{hub.url}/ui/account").status_code == 303
    _, again = console_sign_in(hub, provider, "carol")
    assert again.status_code == 403 and "removed you" in again.text
    with hub.client() as admin:  # added again by an administrator, the provider's identity is theirs once more
        ok(call(admin, "agora.users.create", email="carol@globex.example", role="viewer", tenant="globex"))
    back, answer = console_sign_in(hub, provider, "carol")
    assert answer.status_code == 200 and "admin · ten_" in acting_as(back, hub)  # the provider's claims decide the role


def test_keys_passwords_and_sessions_keep_working_when_the_provider_is_down(sso, tmp_path: Path) -> None:
    hub, provider = sso
    signed_in, _ = console_sign_in(hub, provider, "alice")
    provider.stop()
    time.sleep(1.1)  # the hub asks the provider for its metadata afresh at a sign-in's start, at most once a second
    try:
        with httpx.Client(follow_redirects=False, timeout=30) as browser:
            down = browser.get(f"{hub.url}/ui/oidc/start")
            assert down.status_code == 503 and "Single sign-on is not available now" in down.text
        assert acting_as(signed_in, hub).startswith("alice@acme.example")  # an issued session goes on
        with hub.client() as admin:
            ok(call(admin, "agora.agents.list"))
    finally:
        provider.start(tmp_path)
