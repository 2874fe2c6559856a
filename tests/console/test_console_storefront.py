"""The storefront and billing as a customer uses them: Chromium against a real hub whose hosting node runs a real
instance of examples/marketplace_agent, created, driven, paused and terminated from the pages, then billed."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from ..conftest import call, new_tenant, ok, rare_word
from ..hubproc import HubProcess
from ..test_marketplace import listing, market_hub
from .test_console_pages import LIVE, Screenshot, sign_in

STARTS = 30_000  # ms an instance may take to be built, started and report running


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    yield from market_hub(tmp_path_factory.mktemp("console-market-ui"))


def test_an_instance_is_created_paused_and_terminated_from_the_storefront_and_its_bill_shows(
    page: Page, market: HubProcess, screenshot: Screenshot
) -> None:
    problems: list[str] = []  # a CSP refusal or a script error shows here (not the refusals the test asks for)

    def console_error(message: ConsoleMessage) -> None:
        if message.type == "error" and not re.search(r"status of 409|Error Code 409", message.text):
            problems.append(message.text)

    page.on("console", console_error)
    page.on("pageerror", lambda error: problems.append(str(error)))
    with market.client() as admin, new_tenant(admin, market) as customer, new_tenant(admin, market) as stranger:
        published = ok(call(admin, "agora.marketplace.publish", **listing()))
        name = published["agent_name"]
        sign_in(page, market, customer.headers["Authorization"].removeprefix("Bearer "), "/ui/marketplace")

        expect(page.get_by_role("heading", name="Marketplace")).to_be_visible()
        page.get_by_label("What do you need?").fill(name)
        expect(page).to_have_url(re.compile(rf"q={name}"))
        card = page.get_by_role("listitem").filter(has_text=name)
        expect(card).to_contain_text("0.50 USD per running hour + 0.002 USD per request")
        expect(card).to_contain_text("Success rate")
        screenshot(page, "marketplace")

        card.get_by_role("link", name=name).click()
        expect(page.get_by_role("heading", name=name)).to_be_visible()
        expect(page.get_by_role("region", name="Performance")).to_contain_text("Availability")
        page.get_by_label("Memory limit (MB)").fill("256")
        page.get_by_label("Environment").fill("GREETING=hello")
        screenshot(page, "listing")
        page.get_by_role("button", name="Create instance").click()

        expect(page).to_have_url(re.compile(r"/ui/instances/inst_\w+$"))
        iid = page.url.rsplit("/", 1)[1]
        live = page.locator("[data-live=market_instance]")
        status = page.get_by_role("region", name="Status")
        expect(status).to_contain_text("running", timeout=STARTS)  # from starting, without a reload
        page.evaluate("window.notReloaded = true")

        page.get_by_label("Endpoint").fill("add")
        page.get_by_label("Parameters (JSON)").fill('{"numbers": [20, 22]}')
        page.get_by_role("button", name="Execute").click()
        expect(page.locator("#execute-result")).to_contain_text('"sum": 42')
        expect(page.get_by_role("region", name="Health")).to_contain_text("healthy", timeout=LIVE)
        screenshot(page, "instance")

        page.get_by_role("button", name="Pause").click()
        expect(page.locator("#pause-result").get_by_role("status")).to_contain_text("Paused")
        expect(status).to_contain_text("paused", timeout=LIVE)
        page.get_by_role("button", name="Pause").click()  # again: the catalog refuses, beside the button
        expect(page.locator("#pause-result").get_by_role("alert")).to_contain_text("cannot be paused")
        expect(status).to_contain_text("paused")
        page.get_by_role("button", name="Resume").click()
        expect(status).to_contain_text("running", timeout=LIVE)

        page.get_by_role("button", name="Terminate").click()  # not confirmed: the browser keeps the form
        expect(page.locator("#terminate-result")).to_be_empty()
        assert ok(call(customer, "agora.marketplace.get_instance", instance_id=iid))["status"] == "running"
        page.get_by_label("Yes, terminate it for good").check()
        page.get_by_role("button", name="Terminate").click()
        expect(page.locator("#terminate-result").get_by_role("status")).to_contain_text("Terminating")
        expect(status).to_contain_text("stopped", timeout=STARTS)
        expect(live).to_contain_text("Final bill")
        assert page.evaluate("window.notReloaded") is True

        page.get_by_role("link", name="Your instances").click()
        row = page.get_by_role("row").filter(has=page.locator(f'a[href="/ui/instances/{iid}"]'))
        expect(row).to_contain_text("stopped")
        screenshot(page, "instances")

        page.get_by_role("navigation", name="Console").get_by_role("link", name="Billing").click()
        invoice = ok(call(customer, "agora.billing.invoice"))
        line = next(line for line in invoice["lines"] if line["instance_id"] == iid)
        shown = page.get_by_role("row").filter(has_text=iid)
        expect(shown).to_contain_text(name)
        expect(shown).to_contain_text(f"{Decimal(line['cost']['total_cost']).normalize():f}")
        expect(page.get_by_role("row", name=re.compile("^Total"))).to_contain_text(f"{Decimal(invoice['total']).normalize():f}")
        expect(page.locator("figure[data-chart] canvas")).to_have_count(3)  # uPlot drew each chart
        expect(page.get_by_label("Month", exact=True)).to_have_value(invoice["month"])
        screenshot(page, "billing")
        size = page.viewport_size
        page.set_viewport_size({"width": 390, "height": 844})  # a phone: the charts are drawn again to fit
        page.wait_for_timeout(400)
        screenshot(page, "billing-phone")
        page.set_viewport_size(size)  # type: ignore[arg-type]

        with page.expect_download() as got:
            page.get_by_role("link", name="Export this month's lines as CSV").click()
        with open(got.value.path(), newline="") as file:
            rows = list(csv.DictReader(file))
        assert [r["instance_id"] for r in rows] == [line["instance_id"] for line in invoice["lines"]]
        assert all(r["month"] == invoice["month"] for r in rows)
        exported = next(r for r in rows if r["instance_id"] == iid)
        assert Decimal(exported["total_cost"]) == Decimal(line["cost"]["total_cost"]) and int(exported["requests"]) == 1

        # Having run it, the customer is a verified buyer: it rates the listing on the listing's page.
        page.goto(f"{market.url}/ui/marketplace/{published['listing_id']}")
        reviews = page.get_by_role("region", name="Ratings and reviews")
        expect(reviews).to_contain_text("No reviews yet.")
        reviews.get_by_label("4 ★").check()
        reviews.get_by_label("Title").fill("Adds up")
        reviews.get_by_label("Review", exact=True).fill("<b>fast</b>\nand right")
        reviews.get_by_role("button", name="Publish review").click()
        expect(page.locator("#review-result").get_by_role("status")).to_contain_text("published")
        page.reload()
        expect(reviews.get_by_role("article")).to_contain_text("<b>fast</b>")  # shown as text, never as markup
        expect(reviews).to_contain_text("3.17")  # (5·3 + 4) / (5 + 1)
        screenshot(page, "listing-reviews")
        reviews.get_by_label("5 ★").check()
        reviews.get_by_role("button", name="Publish review").click()  # again: the catalog refuses, beside the form
        expect(page.locator("#review-result").get_by_role("alert")).to_contain_text("reviewed the listing already")

        assert problems == [], problems

        # Another customer: the instance is not there.
        page.context.clear_cookies()
        sign_in(page, market, stranger.headers["Authorization"].removeprefix("Bearer "), f"/ui/instances/{iid}")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        page.goto(market.url + "/ui/billing")
        expect(page.get_by_role("heading", name="Billing")).to_be_visible()
        expect(page.get_by_text(iid)).to_have_count(0)


def test_the_search_box_ranks_listings_and_says_why(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    """Words as a person types them: ranked by the search, the matched words marked, constraints and corrections said."""
    word = rare_word()
    with sqlite_hub.client() as admin:
        repo = {"repository": {"url": "https://example.com/agent.git"}, "build_config": {"start_command": "python agent.py"}}
        best = ok(call(admin, "agora.marketplace.publish", agent_name=f"Juris-{word}", category="translation", languages=["fr", "en"],
                       description=f"Certified {word} translation of legal contracts from French.", pricing={"price": "0.004"}, **repo))
        ok(call(admin, "agora.marketplace.publish", agent_name=f"Dear-{word}", category="translation",
                description=f"Premium {word} translation of legal contracts.", pricing={"price": "0.09"}, **repo))
        sign_in(page, sqlite_hub, sqlite_hub.admin_key, "/ui/marketplace")
        page.get_by_label("What do you need?").fill(f"{word} legal translation from French under a cent a request")
        results = page.locator("#market-view")
        expect(results).to_contain_text("Read “under a cent a request”, “french” as a price of at most 0.01")
        cards = page.locator(".market-listings > li")
        expect(cards.first).to_contain_text(best["agent_name"])
        expect(cards.filter(has_text=f"Dear-{word}")).to_have_count(0)  # over the price said in words
        expect(cards.first.locator("mark").first).to_have_text(word)  # the matched words, marked (escaped text)
        expect(cards.first).to_contain_text("Why: the words match its")
        expect(cards.first).to_contain_text("languages match: fr")
        screenshot(page, "marketplace-search")
        i = next(i for i in range(2, len(word) - 1) if word[i] != word[i + 1])
        misspelled = word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # two (different) letters swapped
        page.get_by_label("What do you need?").fill(f"{misspelled} contracts")
        expect(results).to_contain_text(f"No listing says “{misspelled}”: searched for “{word}” instead", timeout=LIVE)
        expect(cards.filter(has_text=best["agent_name"])).to_have_count(1)
