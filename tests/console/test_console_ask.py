"""Ask the marketplace: the chat in a browser, a conversation of three turns, the answer's links, and a change the
key may not make shown as refused."""

from __future__ import annotations


from playwright.sync_api import Page, expect

from ..conftest import call, new_tenant, ok, rare_word
from ..hubproc import HubProcess
from .test_console_pages import Screenshot, sign_in


def test_a_conversation_with_the_marketplace(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    word = rare_word()
    repo = {"repository": {"url": "https://example.com/agent.git"}, "build_config": {"start_command": "python agent.py"}}
    with sqlite_hub.client() as admin, new_tenant(admin, sqlite_hub, scopes=["marketplace:read", "agents:read"]) as reader:
        first = ok(call(admin, "agora.marketplace.publish", agent_name=f"Lexi-{word}", category="translation", languages=["fr", "en"],
                        description=f"{word} translation of contracts from French.", pricing={"price": "0.004"}, **repo))  # fmt: skip
        ok(call(admin, "agora.marketplace.publish", agent_name=f"Babel-{word}", category="translation",
                description=f"{word} translation for forty languages.", pricing={"price": "0.02"}, **repo))  # fmt: skip
        sign_in(page, sqlite_hub, reader.headers["Authorization"].removeprefix("Bearer "), "/ui/marketplace")
        page.get_by_role("link", name="Ask the marketplace").click()
        expect(page.get_by_role("heading", name="Ask the marketplace")).to_be_visible()

        box = page.get_by_label("Your message")
        box.fill(f"find a {word} translator from French under a cent a request")
        box.press("Enter")
        turns = page.get_by_role("list", name="Conversation").locator(":scope > li")
        expect(turns).to_have_count(1)
        expect(turns.nth(0)).to_contain_text(first["agent_name"])
        expect(turns.nth(0).get_by_role("link", name=first["agent_name"])).to_have_attribute("href", f"/ui/marketplace/{first['listing_id']}")
        expect(turns.nth(0)).not_to_contain_text(f"Babel-{word}")  # over the price said
        expect(box).to_have_value("")

        box.fill("tell me more about the first one")
        page.get_by_role("button", name="Ask").click()
        expect(turns).to_have_count(2)
        expect(turns.nth(1)).to_contain_text(first["agent_name"])
        expect(turns.nth(1)).to_contain_text("0.004")

        box.fill("start an instance of it")
        page.get_by_role("button", name="Ask").click()
        expect(turns).to_have_count(3)
        turns.nth(2).locator("summary").click()
        expect(turns.nth(2).locator(".ask-tools")).to_contain_text("agora.marketplace.create_instance refused")
        assert ok(call(reader, "agora.marketplace.list_instances"))["instances"] == []  # nothing was made
        screenshot(page, "ask")

        box.fill(" ")
        page.get_by_role("button", name="Ask").click()  # the browser lets whitespace through; the catalog refuses it
        expect(turns).to_have_count(4)
        expect(turns.nth(3).get_by_role("alert")).to_contain_text("whitespace")
