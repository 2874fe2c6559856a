"""The console's storefront and billing without a browser, against a real hub with its hosting node running real
instances: what each page says, forms and their refusals in place, tenancy, pagination, the CSV export, and the
tools the pages added (``agora.marketplace.get_listing``, ``agora.billing.usage``, cursors on discover and
list_instances)."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from tests.conftest import call, expect_error, new_tenant, ok, unique
from tests.hubproc import HubProcess
from tests.test_console_http import browser, next_fragment, sign_in
from tests.test_marketplace import listing, market_hub, running, settled
from tests.test_marketplace import market_postgres  # noqa: F401  (a fixture, used by name)


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    yield from market_hub(tmp_path_factory.mktemp("console-market"))


@pytest.fixture(params=["sqlite", "postgres"])
def stores(request: pytest.FixtureRequest) -> HubProcess:
    """The tools' own queries, on both stores."""
    return request.getfixturevalue("market" if request.param == "sqlite" else "market_postgres")


def key_of(client: httpx.Client) -> str:
    return client.headers["Authorization"].removeprefix("Bearer ")


def stop(client: httpx.Client, instance_id: str) -> None:
    """Terminate (answered 202, stopping) and go on: the node stops it in the background."""
    response = call(client, "agora.marketplace.terminate_instance", instance_id=instance_id, grace_seconds=1)
    assert response.status_code == 202, response.text


def csrf(b: httpx.Client) -> dict[str, str]:
    return {"csrf_token": b.cookies["agora_csrf"]}


def test_an_empty_marketplace_says_how_to_publish(market: HubProcess) -> None:
    """(First in this module: nothing is listed yet on its hub.)"""
    with browser(market) as b:
        sign_in(b, market.admin_key)
        page = b.get("/ui/marketplace")
        assert page.status_code == 200
        assert "agora marketplace publish listing.json" in page.text and "client.marketplace.publish(" in page.text
        assert "You run no instances yet" in b.get("/ui/instances").text
        billing = b.get("/ui/billing")
        assert billing.status_code == 200 and "Nothing was billed in" in billing.text


def test_a_customer_creates_runs_pauses_and_terminates_an_instance_and_is_billed(market: HubProcess) -> None:
    with market.client() as admin, new_tenant(admin, market) as customer, new_tenant(admin, market) as stranger:
        published = ok(call(admin, "agora.marketplace.publish", **listing(category="console-" + unique("c"))))
        lid = published["listing_id"]
        with browser(market) as b, browser(market) as other:
            sign_in(b, key_of(customer))
            sign_in(other, key_of(stranger))

            found = b.get("/ui/marketplace", params={"q": published["agent_name"]})
            assert found.status_code == 200 and f'href="/ui/marketplace/{lid}"' in found.text
            assert "0.50 USD per running hour + 0.002 USD per request" in found.text
            assert "Success rate" in found.text and "not measured yet" in found.text
            assert "No listing matches" in b.get("/ui/marketplace", params={"q": unique("nothing")}).text
            htmx = b.get("/ui/marketplace", params={"category": published["category"]}, headers={"HX-Request": "true"})
            assert htmx.status_code == 200 and "<html" not in htmx.text and published["agent_name"] in htmx.text

            page = b.get(f"/ui/marketplace/{lid}")
            assert page.status_code == 200 and 'name="memory_limit"' in page.text and "Create instance" in page.text
            assert b.get("/ui/marketplace/lst_000000000000000000000000").status_code == 404

            form = f"/ui/marketplace/{lid}/instances"
            assert b.post(form, data={"env": "GREETING=hi"}).status_code == 403  # no CSRF token
            bad = b.post(form, data={**csrf(b), "memory_limit": "lots"})
            assert bad.status_code == 422 and 'role="alert"' in bad.text and "memory_limit" in bad.text
            small = b.post(form, data={**csrf(b), "memory_limit": "16"})
            assert small.status_code == 400 and "needs at least" in small.text
            assert b.post(form, data={**csrf(b), "env": "no equals sign"}).status_code == 400
            created = b.post(form, data={**csrf(b), "env": "GREETING=hi\n", "memory_limit": "256"})
            assert created.status_code == 303
            target = created.headers["location"]
            iid = re.fullmatch(r"/ui/instances/(inst_\w+)", target).group(1)  # type: ignore[union-attr]
            hx = b.post(form, data=csrf(b), headers={"HX-Request": "true"})
            assert hx.status_code == 200 and hx.headers["hx-redirect"].startswith("/ui/instances/inst_")
            stop(customer, hx.headers["hx-redirect"].rsplit("/", 1)[1])

            running(customer, iid)
            shown = b.get(target)
            assert shown.status_code == 200 and "running" in shown.text and "Cost so far" in shown.text
            assert 'sse-connect="/ui/live/market_instance?instance=' + iid in shown.text
            assert iid in b.get("/ui/instances").text and iid not in other.get("/ui/instances").text

            # Another tenant: the instance is not there, whatever it asks.
            assert other.get(target).status_code == 404
            assert other.post(f"{target}/pause", data=csrf(other)).status_code == 404
            assert other.post(f"{target}/execute", data={**csrf(other), "endpoint": "add"}).status_code == 404
            assert ok(customer.get(f"/marketplace/instances/{iid}"))["status"] == "running"

            done = b.post(f"{target}/execute", data={**csrf(b), "endpoint": "add", "parameters": '{"numbers": [1, 2]}'})
            assert done.status_code == 200 and "Completed" in done.text and "&#34;sum&#34;: 3" in done.text
            not_json = b.post(f"{target}/execute", data={**csrf(b), "endpoint": "add", "parameters": "{nope"})
            assert not_json.status_code == 400 and "not JSON" in not_json.text

            paused = b.post(f"{target}/pause", data=csrf(b))
            assert paused.status_code == 200 and 'class="done"' in paused.text
            again = b.post(f"{target}/pause", data=csrf(b))
            assert again.status_code == 409 and 'role="alert"' in again.text and "cannot be paused" in again.text
            refused = b.post(f"{target}/execute", data={**csrf(b), "endpoint": "add"})
            assert refused.status_code == 409 and "paused" in refused.text
            assert b.post(f"{target}/resume", data=csrf(b)).status_code == 200

            unconfirmed = b.post(f"{target}/terminate", data=csrf(b))
            assert unconfirmed.status_code == 400 and "terminate it for good" in unconfirmed.text
            assert ok(customer.get(f"/marketplace/instances/{iid}"))["status"] == "running"
            assert b.post(f"{target}/terminate", data={**csrf(b), "confirm": "yes"}).status_code == 200
            final = settled(customer, iid, "stopped")
            assert "Final bill" in b.get(target).text
            assert b.post(f"{target}/resume", data=csrf(b)).status_code == 409

            invoice = ok(call(customer, "agora.billing.invoice"))
            line = next(line for line in invoice["lines"] if line["instance_id"] == iid)
            assert line["cost"] == final["billing_info"]["cost"]
            page = b.get("/ui/billing")
            assert page.status_code == 200 and iid in page.text and page.text.count("<figure class=\"card chart\" data-chart=") == 3
            assert '<script src="/ui/static/charts.js' in page.text and "<script>" not in page.text
            assert "Prepaid credits" in page.text and "Set one with" in page.text  # no budget yet
            ok(call(customer, "agora.billing.set_budget", monthly_limit="0.000001", action="notify"))  # spent already
            budgeted = b.get("/ui/billing").text
            assert '<p class="banner banner-bad" role="alert">The monthly budget of 0.000001 USD is spent' in budgeted
            assert "nothing is stopped (notify only)" in budgeted and "0.00 USD left" in budgeted

            exported = b.get("/ui/billing/export.csv", params={"month": invoice["month"]})
            assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(exported.text)))
            assert sorted(r["instance_id"] for r in rows) == sorted(line["instance_id"] for line in invoice["lines"])
            mine = next(r for r in rows if r["instance_id"] == iid)
            assert Decimal(mine["total_cost"]) == Decimal(line["cost"]["total_cost"]) and mine["pricing_model"] == "hybrid"

            assert iid not in other.get("/ui/billing").text
            assert other.get("/ui/billing", params={"customer": invoice["customer"]}).status_code == 404
            assert other.get("/ui/billing/export.csv", params={"customer": invoice["customer"]}).status_code == 404
            assert b.get("/ui/billing", params={"month": "2026-13"}).status_code == 422
            assert b.get("/ui/billing/export.csv", params={"month": "soon"}).status_code == 422


def test_usage_by_month_totals_what_the_invoices_say(stores: HubProcess) -> None:
    market = stores
    with market.client() as admin, new_tenant(admin, market) as customer:
        published = ok(call(admin, "agora.marketplace.publish", **listing()))
        iid = ok(call(customer, "agora.marketplace.create_instance", agent_id=published["listing_id"]))["instance_id"]
        running(customer, iid)
        ok(call(customer, "agora.marketplace.execute", instance_id=iid, endpoint="add", parameters={"numbers": [1]}))
        with browser(market) as b:  # the instances page's live region: a status change is pushed to it
            sign_in(b, key_of(customer))
            with b.stream("GET", "/ui/live/market_instances") as stream:
                lines = stream.iter_lines()
                assert "running" in next_fragment(lines, "market_instances")
                ok(call(customer, "agora.marketplace.pause_instance", instance_id=iid))  # its bill stands still from here
                assert "paused" in next_fragment(lines, "market_instances", until="paused")
        invoice = ok(call(customer, "agora.billing.invoice"))
        usage = ok(call(customer, "agora.billing.usage", months=3))
        assert [m["month"] for m in usage["months"]][-1] == invoice["month"] and len(usage["months"]) == 3
        this = usage["months"][-1]
        assert this["cost"] == invoice["total"] and this["instances"] == 1 and this["requests"] == 1
        assert this["running_seconds"] == pytest.approx(invoice["lines"][0]["running_seconds"])
        assert all(m["cost"] == "0" and m["instances"] == 0 for m in usage["months"][:-1])
        assert usage["customer"] == invoice["customer"] and usage["currency"] == "USD"
        admin_view = ok(call(admin, "agora.billing.usage", months=1, customer=invoice["customer"]))
        assert admin_view["months"] == usage["months"][-1:]
        expect_error(call(customer, "agora.billing.usage", customer="default"), 404, "not_found")
        expect_error(call(customer, "agora.billing.usage", months=0), 422, "invalid_argument")
        stop(customer, iid)


def test_listings_and_instances_come_a_page_at_a_time(stores: HubProcess) -> None:
    market = stores
    word = unique("paged").replace("-", "")
    with market.client() as admin, new_tenant(admin, market) as customer:
        names = sorted(ok(call(admin, "agora.marketplace.publish", **listing(f"{word}-{i:02d}")))["agent_name"] for i in range(26))
        first = ok(call(customer, "agora.marketplace.discover", text=word, limit=10))
        assert first["total"] == 26 and [a["agent_name"] for a in first["agents"]] == names[:10] and first["next_cursor"]
        rest = ok(call(customer, "agora.marketplace.discover", text=word, limit=20, cursor=first["next_cursor"]))
        assert [a["agent_name"] for a in rest["agents"]] == names[10:] and rest["next_cursor"] is None
        expect_error(call(customer, "agora.marketplace.discover", cursor="!!"), 400, "invalid_argument")

        with browser(market) as b:
            sign_in(b, key_of(customer))
            page = b.get("/ui/marketplace", params={"q": word})
            assert page.text.count('<li class="card">') == 24 and "Next page" in page.text
            following = re.search(r'href="(/ui/marketplace\?q=[^"]+cursor=[^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            last = b.get(following.replace("&amp;", "&"))
            assert last.text.count('<li class="card">') == 2 and names[-1] in last.text and "Next page" not in last.text

        one = ok(call(customer, "agora.marketplace.get_listing", listing=names[0]))
        assert one["marketplace_info"]["availability"]["available"] is True
        made = [ok(call(customer, "agora.marketplace.create_instance", agent_id=names[0]))["instance_id"] for _ in range(3)]
        try:
            page1 = ok(call(customer, "agora.marketplace.list_instances", limit=2))
            page2 = ok(call(customer, "agora.marketplace.list_instances", limit=2, cursor=page1["next_cursor"]))
            assert [i["instance_id"] for i in page1["instances"] + page2["instances"]] == made[::-1] and page2["next_cursor"] is None
            with new_tenant(admin, market) as stranger:  # another tenant's cursor names nothing it sees: an empty page
                assert ok(call(stranger, "agora.marketplace.list_instances", cursor=page1["next_cursor"]))["instances"] == []
        finally:
            for iid in made:
                stop(customer, iid)


def test_the_listings_a_listing_and_the_bill_update_themselves_when_an_instance_starts(market: HubProcess) -> None:
    """The storefront's live regions: a customer's new instance (a hub event of its tenant) is pushed to the listing
    card, the listing's page and the billing cards while they are open, without a reload."""
    with market.client() as admin, new_tenant(admin, market) as customer:
        published = ok(call(admin, "agora.marketplace.publish", **listing(category="live-" + unique("c"))))
        lid, name = published["listing_id"], published["agent_name"]
        streams = {"market": f"/ui/live/market?q={name}", "market_listing": f"/ui/live/market_listing?listing={lid}", "billing": "/ui/live/billing"}
        with browser(market) as b:
            sign_in(b, key_of(customer))
            assert 'sse-connect="/ui/live/market?q=' in b.get("/ui/marketplace", params={"q": name}).text
            assert f'sse-connect="/ui/live/market_listing?listing={lid}"' in b.get(f"/ui/marketplace/{lid}").text
            assert 'sse-connect="/ui/live/billing?month=' in b.get("/ui/billing").text
            with contextlib.ExitStack() as open_pages:
                lines = {}
                for region, path in streams.items():
                    stream = open_pages.enter_context(b.stream("GET", path, timeout=30))
                    lines[region] = stream.iter_lines()
                    next_fragment(lines[region], region)  # as the page shows it now: none of the customer's
                iid = ok(call(customer, "agora.marketplace.create_instance", agent_id=lid))["instance_id"]
                assert "1 yours" in next_fragment(lines["market"], "market", until="1 yours")
                assert '<a href="/ui/instances">1</a>' in next_fragment(lines["market_listing"], "market_listing", until="/ui/instances")
                assert re.search(r'<a href="/ui/instances">1</a>', next_fragment(lines["billing"], "billing", until='<a href="/ui/instances">1</a>'))
        stop(customer, iid)
        settled(customer, iid, "stopped")
