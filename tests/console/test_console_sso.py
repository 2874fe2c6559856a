"""Single sign-on in a real browser (issue 57): Chromium goes through the provider's own login and consent pages, and
each person lands in the console with their role: a viewer reads and is refused a send, an operator sends, and an
admin of another tenant sees only that tenant."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import call, ok, unique
from tests.hubproc import HubProcess
from tests.sso_provider import Provider, sso_hub


@pytest.fixture(scope="module")
def sso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, Provider]]:
    yield from sso_hub(tmp_path_factory.mktemp("sso-browser"))


def sign_in(page: Page, hub: HubProcess, login: str) -> None:
    page.context.clear_cookies()
    page.goto(hub.url + "/ui/sign-in")
    page.get_by_role("link", name="Sign in with Test IdP").click()
    page.get_by_placeholder("Enter any login").fill(login)  # the provider's own page from here
    page.get_by_placeholder("and password").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()  # its consent page
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def send(page: Page, hub: HubProcess, to: str) -> None:
    page.goto(hub.url + "/ui/send")
    page.get_by_label("To agent").fill(to)
    page.get_by_label("Content", exact=True).fill("hello from the console")
    page.get_by_role("button", name="Send message").click()


def test_each_person_signs_in_through_the_provider_and_gets_their_role(page: Page, sso) -> None:
    hub, _ = sso
    with hub.client() as admin:
        developer = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant="acme", role="developer"))["key"]
    with hub.client(developer) as acme:
        inbox = ok(call(acme, "agora.agents.register", agent_name=unique("inbox")))["agent_name"]

    sign_in(page, hub, "alice")
    expect(page.get_by_title("Signed in as")).to_contain_text("alice@acme.example · viewer")
    send(page, hub, inbox)
    expect(page.locator("#send-message").get_by_role("alert")).to_contain_text("operator")  # refused, naming who may

    sign_in(page, hub, "oscar")
    expect(page.get_by_title("Signed in as")).to_contain_text("oscar@acme.example · operator")
    send(page, hub, inbox)
    expect(page.locator("#send-message").get_by_role("status")).to_contain_text("See the messages")

    sign_in(page, hub, "carol")
    expect(page.get_by_title("Signed in as")).to_contain_text("carol@globex.example · admin")
    page.goto(hub.url + "/ui/agents")
    expect(page.get_by_role("heading", name="Agents")).to_be_visible()
    expect(page.get_by_text(inbox)).to_have_count(0)  # acme's agent is not globex's to see
