"""A real OpenID Connect provider for the tests (npm's ``oidc-provider``, tests/oidc/provider.mjs, installed by
``npm ci --prefix tests/oidc``), and a browser-free walk through its login pages."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from .hubproc import HubProcess, free_port

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
SECRET = "agora-console-client-secret-0123456789"
AUDIENCE = "http://agora.test/api"
CLI_REDIRECT = "http://127.0.0.1:9/cli-callback"  # never served: the test reads the code off the redirect

# The people at the provider, their groups and tenant claim; the hub's role map below gives them their roles.
ACCOUNTS = {
    "alice": {"email": "alice@acme.example", "name": "Alice", "groups": ["acme-viewers"], "tenant": "acme"},
    "oscar": {"email": "oscar@acme.example", "name": "Oscar", "groups": ["acme-operators", "acme-viewers"], "tenant": "acme"},
    "carol": {"email": "carol@globex.example", "name": "Carol", "groups": ["globex-admins"], "tenant": "globex"},
    "nora": {"email": "nora@acme.example", "name": "Nora", "groups": ["interns"], "tenant": "acme"},
}
ROLE_MAP = "acme-viewers=viewer,acme-operators=operator,globex-admins=admin@globex"


@dataclass
class Provider:
    hub_url: str
    port: int = field(default_factory=free_port)
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "alg": "RS256", "use": "sig"}, private=True))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def hub_args(self) -> list[str]:
        return [
            "--oidc-issuer", self.issuer, "--oidc-client-id", "agora", "--oidc-client-secret", SECRET,
            "--oidc-scopes", "openid email profile groups tenant", "--oidc-role-map", ROLE_MAP, "--oidc-audience", AUDIENCE,
            "--oidc-name", "Test IdP", "--public-url", self.hub_url,
        ]  # fmt: skip

    def start(self, workdir: Path) -> Provider:
        node = shutil.which("node")
        if node is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
            reason = "the test OpenID provider needs node and `npm ci --prefix tests/oidc`"
            if os.environ.get("AGORA_REQUIRE_SERVICES") == "1":
                pytest.fail(f"AGORA_REQUIRE_SERVICES=1, but {reason}", pytrace=False)
            pytest.skip(reason)
        config = {
            "audience": AUDIENCE,
            "accounts": ACCOUNTS,
            "keys": [self.key.as_dict(private=True)],
            "clients": [
                {"client_id": "agora", "client_secret": SECRET, "redirect_uris": [f"{self.hub_url}/ui/oidc/callback"],
                 "post_logout_redirect_uris": [f"{self.hub_url}/ui/sign-in"], "grant_types": ["authorization_code"],
                 "response_types": ["code"]},
                {"client_id": "cli", "token_endpoint_auth_method": "none", "redirect_uris": [CLI_REDIRECT],
                 "grant_types": ["authorization_code"], "response_types": ["code"]},
            ],
        }  # fmt: skip
        path = workdir / "oidc-provider.json"
        path.write_text(json.dumps(config))
        self.log = workdir / "oidc-provider.log"
        self.proc = subprocess.Popen([node, str(OIDC_DIR / "provider.mjs"), str(self.port), str(path)], stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.issuer + "/.well-known/openid-configuration", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"the OpenID provider did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def sso_hub(base: Path, database_url: str | None = None) -> Iterator[tuple[HubProcess, Provider]]:
    """A hub whose people sign in through a provider of its own (both stopped afterwards)."""
    hub = HubProcess(base / "hub", database_url=database_url)
    provider = Provider(hub.url).start(base)
    hub.extra_args = provider.hub_args()
    try:
        hub.start()
        yield hub, provider
    finally:
        hub.stop()
        provider.stop()


def _form(page: httpx.Response) -> tuple[str, dict[str, str]]:
    found = re.search(r'<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>', page.text, re.S)
    assert found, page.text[:500]
    fields = dict(re.findall(r'<input[^>]*name="([^"]*)"[^>]*value="([^"]*)"', found.group(2)))
    return urljoin(str(page.url), html.unescape(found.group(1))), fields


def through_login(client: httpx.Client, url: str, login: str, stop_at: str) -> str:
    """Follow ``url`` through the provider's login (and consent) pages as ``login``; the first URL under ``stop_at``
    that the provider sends the browser to."""
    response = client.get(url)
    for _ in range(20):
        while response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if target.startswith(stop_at):
                return target
            response = client.get(target)
        action, fields = _form(response)
        if "login" in response.text and 'name="login"' in response.text:
            fields.update(login=login, password="any password")
        response = client.post(action, data=fields)
    raise AssertionError("the provider never sent the browser back")


def access_token(provider: Provider, login: str) -> str:
    """A JWT access token for the hub's audience, as a command-line client gets one: code flow with PKCE."""
    from authlib.common.security import generate_token
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = generate_token(48)
    params = {
        "client_id": "cli", "response_type": "code", "redirect_uri": CLI_REDIRECT, "scope": "openid email groups tenant",
        "code_challenge": create_s256_code_challenge(verifier), "code_challenge_method": "S256", "state": "s",
        "resource": AUDIENCE,
    }  # fmt: skip
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        back = through_login(browser, str(httpx.URL(provider.issuer + "/auth", params=params)), login, CLI_REDIRECT)
    code = parse_qs(urlsplit(back).query)["code"][0]
    tokens = httpx.post(provider.issuer + "/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CLI_REDIRECT, "client_id": "cli",
        "code_verifier": verifier, "resource": AUDIENCE,
    }).json()  # fmt: skip
    assert tokens.get("access_token", "").count(".") == 2, tokens
    return str(tokens["access_token"])


def claims_token(provider: Provider, **changes: Any) -> dict[str, Any]:
    """An access token's claims for alice as the provider would write them, with ``changes``."""
    now = int(time.time())
    claims = {"iss": provider.issuer, "sub": "alice", "aud": AUDIENCE, "iat": now, "exp": now + 600, **ACCOUNTS["alice"]}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}
