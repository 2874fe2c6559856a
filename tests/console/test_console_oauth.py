"""The OAuth consent page in Chromium: a person approves an MCP client, and the browser really reaches the client's
redirect URI (the page's CSP must let the form's redirect through)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from playwright.sync_api import Page, Route, expect

from ..conftest import call, ok, unique
from ..hubproc import HubProcess, free_port
from .test_console_pages import sign_in

Screenshot = Callable[[Page, str], tuple[Path, Path]]


def _authorization_url(hub: HubProcess, redirect: str) -> str:
    client = httpx.post(f"{hub.url}/register", json={"client_name": "Inspector", "redirect_uris": [redirect], "token_endpoint_auth_method": "none"}).json()
    query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": redirect, "state": "st", "code_challenge": "c" * 43,
             "code_challenge_method": "S256"}  # fmt: skip
    return str(httpx.URL(f"{hub.url}/authorize", params=query))


def _callback(page: Page, redirect: str) -> list[str]:
    """Where the browser went on the client's side (the client's callback, answered here instead of by a client)."""
    reached: list[str] = []

    def answer(route: Route) -> None:
        reached.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<p>signed in</p>")

    page.route(re.compile(re.escape(redirect) + ".*"), answer)
    return reached


def test_a_person_approves_a_client_with_a_key(page: Page, screenshot: Screenshot, sqlite_hub: HubProcess) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    with sqlite_hub.client() as admin:
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))["key"]
    reached = _callback(page, redirect)
    page.goto(_authorization_url(sqlite_hub, redirect))
    expect(page.get_by_role("heading", name="Allow Inspector to use Agora?")).to_be_visible()
    screenshot(page, "oauth-consent")
    page.get_by_label("API key or agent token").fill(key)
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text("signed in")).to_be_visible()
    params = parse_qs(urlsplit(reached[0]).query)
    assert params["state"] == ["st"] and len(params["code"][0]) >= 40


def test_signed_in_to_the_console_a_person_approves_as_that_key(page: Page, sqlite_hub: HubProcess) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    with sqlite_hub.client() as admin:
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))["key"]
    sign_in(page, sqlite_hub, key)
    reached = _callback(page, redirect)
    page.goto(_authorization_url(sqlite_hub, redirect))
    expect(page.get_by_text("You are signed in to the console as customer:")).to_be_visible()
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_text("signed in")).to_be_visible()
    assert "code=" in reached[0]


def test_a_person_says_no(page: Page, sqlite_hub: HubProcess) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    reached = _callback(page, redirect)
    page.goto(_authorization_url(sqlite_hub, redirect))
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_text("signed in")).to_be_visible()
    assert parse_qs(urlsplit(reached[0]).query)["error"] == ["access_denied"]
