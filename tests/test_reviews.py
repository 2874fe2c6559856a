"""Ratings and reviews (issue 58): only a verified buyer rates, once; edits keep history; the publisher answers; the
hub's administrator hides with a reason; each change moves the listing's Bayesian rating; best rated first."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, insert

from agora.store import Store
from agora.store.ops import marketplace as market_ops
from agora.store.ops import reviews as review_ops
from agora.store.schema import market_listings, market_reviews
from agora.core.reputation import PRIOR, score
from agora_sdk.wire.marketplace import ReputationInputs
from agora_sdk.wire.reviews import bayesian

from .conftest import call, expect_error, fresh_postgres_url, new_tenant, ok, until
from .hubproc import HubProcess
from .test_marketplace import listing, market_hub, running
from .test_store import store  # noqa: F401 - the fixture: a fresh store of each engine

NOW = datetime(2026, 11, 28, tzinfo=timezone.utc)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def market(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    yield from market_hub(tmp_path_factory.mktemp(f"reviews-{request.param}"), url, AGORA_REPUTATION_SECONDS="0.5")


def _rated(client: httpx.Client, listing_id: str) -> dict[str, Any]:
    return ok(client.get(f"/marketplace/agents/{listing_id}/reviews"))


def test_a_verified_buyer_rates_once_the_publisher_answers_and_the_admin_hides(market: HubProcess) -> None:
    with market.client() as admin, new_tenant(admin, market) as buyer, new_tenant(admin, market) as stranger:
        published = ok(admin.post("/marketplace/agents", json=listing()))  # (a listing on the node's disk: the admin's)
        lid = published["listing_id"]
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=published["publisher"]))["key"]
        publisher = market.client(key)
        expect_error(call(stranger, "agora.reviews.write", listing=lid, rating=5), 403, "permission_denied")
        refused = expect_error(call(publisher, "agora.reviews.write", listing=lid, rating=5), 403, "permission_denied")
        assert refused["details"]["reason"] == "own_listing"

        iid = ok(buyer.post("/marketplace/instances", json={"agent_id": lid}))["instance_id"]
        running(buyer, iid)
        refused = expect_error(call(buyer, "agora.reviews.write", listing=lid, rating=5), 403, "permission_denied")
        assert refused["details"]["reason"] == "not_a_verified_buyer"  # running a minute is not yet buying
        done = ok(buyer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [1, 2]}}))
        assert done["status"] == "completed"

        text = "<script>alert(1)</script> adds fast\nand right"
        review = ok(buyer.post(f"/marketplace/agents/{lid}/reviews", json={"rating": 5, "title": "Good", "text": text}))
        assert (review["rating"], review["text"], review["status"], review["yours"], review["edited"]) == (5, text, "published", True, False)
        assert review["listing_version"] == 1 and review["verified_buyer"] is True
        expect_error(call(buyer, "agora.reviews.write", listing=lid, rating=4), 409, "conflict")
        seen = _rated(stranger, lid)
        assert [r["text"] for r in seen["reviews"]] == [text] and seen["reviews"][0]["yours"] is False  # stored and shown as text
        assert seen["summary"] == {"rating": bayesian(5, 1), "rating_count": 1, "average": 5.0, "distribution": {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}}

        edited = ok(call(buyer, "agora.reviews.edit", review_id=review["review_id"], rating=4))
        assert edited["edited"] is True and edited["text"] == text
        name = published["agent_name"]  # rated bayesian(4, 1) = 3.17 now; the admin's other listings stand at 3
        found = ok(call(stranger, "agora.marketplace.search", q=name, min_rating=3.1, kinds=["listing", "agent"]))
        assert [(h["id"], h["marketplace_info"]["rating_count"]) for h in found["results"]] == [(lid, 1)]
        assert ok(call(stranger, "agora.marketplace.search", q=name, min_rating=3.2))["results"] == []
        mine = ok(call(buyer, "agora.query.agents", min_rating=3.1, sort="rating"))["agents"]  # its instance's agent
        assert [(a["listing"]["listing_id"], a["listing"]["rating"]) for a in mine] == [(lid, bayesian(4, 1))]
        assert ok(call(buyer, "agora.query.agents", min_rating=3.2))["agents"] == []
        stats = ok(call(buyer, "agora.query.marketplace", min_rating=3.1))
        assert (stats["total_agents"], stats["by_rating"]) == (1, {"3": 1})
        best = ok(call(stranger, "agora.marketplace.search", q=f"best rated {name}"))
        assert best["interpretation"]["sort"] == "rating" and best["results"][0]["id"] == lid
        shown = ok(call(stranger, "agora.marketplace.get_listing", listing=lid))
        assert (shown["rating"], shown["rating_count"], shown["rating_distribution"]) == (bayesian(4, 1), 1, [0, 0, 0, 1, 0])
        expect_error(call(stranger, "agora.reviews.edit", review_id=review["review_id"], rating=1), 404, "not_found")

        # The hub's own records of it: one instance, one execution completed (reckoned every 0.5 s here).
        def reckoned() -> dict[str, Any] | None:
            shown = ok(call(stranger, "agora.marketplace.get_listing", listing=lid))
            inputs = shown["reputation_inputs"]
            return shown if inputs and inputs["completed"] == 1 and inputs["rating"] == bayesian(4, 1) else None

        reputed = until(reckoned, "the listing's reputation was never reckoned from its execution")
        inputs = reputed["reputation_inputs"]
        assert (inputs["failed"], inputs["instances"], inputs["ended_early"]) == (0, 1, 0) and inputs["p95_seconds"] > 0
        assert reputed["reputation"] == score(ReputationInputs.model_validate(inputs)) != PRIOR
        best = ok(stranger.get("/marketplace/agents", params={"sort": "reputation", "min_reputation": reputed["reputation"]}))
        assert lid in [a["listing_id"] for a in best["agents"]]
        assert all(a["reputation"] >= reputed["reputation"] for a in best["agents"])

        from .test_cli import agora

        answered = agora(market, "reviews", "respond", review["review_id"], "Thanks!", key=key)
        assert answered.returncode == 0 and "answered" in answered.stdout, answered.stderr
        shown_cli = agora(market, "reviews", "ls", lid, key=key)
        assert shown_cli.returncode == 0 and f"rating {bayesian(4, 1):.2f} (Bayesian) from 1 rating(s)" in shown_cli.stdout, shown_cli.stderr
        assert _rated(stranger, lid)["reviews"][0]["response"]["text"] == "Thanks!"
        expect_error(call(buyer, "agora.reviews.respond", review_id=review["review_id"], text="me too"), 404, "not_found")

        hidden = ok(call(admin, "agora.reviews.hide", review_id=review["review_id"], reason="spam link"))
        assert hidden["status"] == "hidden"
        assert _rated(stranger, lid)["reviews"] == [] and _rated(stranger, lid)["summary"]["rating_count"] == 0
        own = _rated(buyer, lid)["reviews"]
        assert [(r["status"], r["hidden_reason"]) for r in own] == [("hidden", "spam link")]  # its author sees why
        audit = ok(call(admin, "agora.admin.audit", action="review_hidden"))["entries"]
        assert any(e["target_id"] == review["review_id"] and e["reason"] == "spam link" for e in audit)
        expect_error(call(buyer, "agora.reviews.hide", review_id=review["review_id"], reason="x"), 403, "permission_denied")

        ok(call(admin, "agora.reviews.hide", review_id=review["review_id"], reason="appealed", hidden=False))
        withdrawn = ok(call(buyer, "agora.reviews.withdraw", review_id=review["review_id"]))
        assert withdrawn["status"] == "withdrawn" and _rated(stranger, lid)["summary"]["rating_count"] == 0
        again = ok(call(buyer, "agora.reviews.write", listing=lid, rating=3, text="second thoughts"))
        assert again["review_id"] == review["review_id"] and again["status"] == "published" and again["edited"] is True
        assert _rated(stranger, lid)["summary"]["rating"] == bayesian(3, 1)


def test_bad_reviews_are_refused_and_change_nothing(market: HubProcess) -> None:
    with market.client() as admin, new_tenant(admin, market) as someone:
        lid = ok(admin.post("/marketplace/agents", json=listing()))["listing_id"]
        for bad in ({"rating": 0}, {"rating": 6}, {"rating": 5, "text": "x" * 4001}, {"rating": 5, "title": "a\x1bb"},
                    {"rating": 5, "text": "right-to-left \u202e override"}, {"rating": "five"}):  # fmt: skip
            expect_error(call(someone, "agora.reviews.write", listing=lid, **bad), 422, "invalid_argument")
        expect_error(call(someone, "agora.reviews.edit", review_id="rev_0000000000000000", rating=2), 404, "not_found")
        expect_error(call(someone, "agora.reviews.list", listing="lst_0000000000000000"), 404, "not_found")
        assert _rated(someone, lid)["summary"]["rating_count"] == 0


def test_reputation_starts_from_its_priors_and_follows_the_records() -> None:
    assert PRIOR == 70.75  # the schema's default for a listing not reckoned yet (store/schema.py)
    proven = ReputationInputs(rating=4.6, completed=990, failed=10, p95_seconds=0.5, running_seconds=86_400, instances=40, ended_early=1)
    flaky = ReputationInputs(rating=4.6, completed=600, failed=400, p95_seconds=30, running_seconds=3_600, down_seconds=3_600, instances=40, ended_early=20)
    assert score(proven) > PRIOR > score(flaky)  # the same rating: the hub's records tell them apart
    assert score(ReputationInputs(rating=3.0, completed=1)) - PRIOR < 1  # one task barely moves it


# -- ratings and the best-rated order, in the store (both engines) -----------------------------------------------------


def _listing_rated(conn: Connection, name: str, ratings: list[int]) -> None:
    conn.execute(insert(market_listings).values(
        listing_id=f"lst_{name}", tenant_id="publisher", agent_name=name, version=1, status="listed", description="",
        category="translation", capabilities=[], repository={}, build_config={}, host_requirements={}, pricing={},
        max_instances=1, search_text=name, created_at=NOW, updated_at=NOW,
    ))  # fmt: skip
    for n, rating in enumerate(ratings):
        conn.execute(insert(market_reviews).values(
            review_id=f"rev_{name}_{n}", listing_id=f"lst_{name}", tenant_id=f"buyer-{n}", author="x", rating=rating,
            title="", text="", listing_version=1, status="published", edits=0, created_at=NOW, updated_at=NOW,
        ))  # fmt: skip
    review_ops.rate_listing(conn, f"lst_{name}")


async def test_one_five_star_review_does_not_beat_forty_good_ones(store: Store) -> None:
    def seed(conn: Connection) -> None:
        _listing_rated(conn, "lucky", [5])
        _listing_rated(conn, "proven", [5, 5, 5, 5, 4] * 8)  # forty, averaging 4.8
        _listing_rated(conn, "poor", [2, 1, 2])
        _listing_rated(conn, "unrated", [])

    await store.write(seed)
    order, total, _ = await store.read(lambda conn: market_ops.discover(conn, None, [], 10, best="rating"))
    assert [r["agent_name"] for r in order] == ["proven", "lucky", "unrated", "poor"] and total == 4
    assert order[0]["rating"] == bayesian(192, 40) and order[0]["rating_distribution"] == [0, 0, 0, 8, 32]
    good, total, _ = await store.read(lambda conn: market_ops.discover(conn, None, [], 10, min_rating=3.2, best="rating"))
    assert [r["agent_name"] for r in good] == ["proven", "lucky"] and total == 2

    pages, cursor = [], None
    while True:  # a page at a time, in the same order
        rows, _, cursor = await store.read(lambda conn: market_ops.discover(conn, None, [], 1, cursor, best="rating"))
        pages += [r["agent_name"] for r in rows]
        if cursor is None:
            break
    assert pages == ["proven", "lucky", "unrated", "poor"]


async def test_marketplace_agents_are_found_and_counted_by_their_listings_standing(store: Store) -> None:
    """agora.query.agents and agora.query.marketplace: an instance's agent stands as the listing it runs does."""
    from agora.store.ops import agents as agent_ops
    from agora.store.schema import market_instances

    from .test_store import add_agent, add_tenant

    def seed(conn: Connection) -> None:
        add_tenant(conn, "buyer")
        for name, ratings in (("proven", [5, 5, 5, 5, 4] * 8), ("lucky", [5]), ("poor", [2, 1, 2])):
            _listing_rated(conn, name, ratings)
            for n in range(2):  # two instances of each: two agents of the buyer's
                add_agent(conn, "buyer", f"agt_{name}_{n}", f"{name}-{n}")
                conn.execute(insert(market_instances).values(
                    instance_id=f"ins_{name}_{n}", tenant_id="buyer", listing_id=f"lst_{name}", listing_version=1, node_id="node",
                    agent_id=f"agt_{name}_{n}", status="running", config={}, spec={}, pricing={}, cpu_reserved=0.1,
                    memory_reserved_mb=64, restarts=0, error_count=0, last_output=[], created_at=NOW,
                ))  # fmt: skip
        add_agent(conn, "buyer", "agt_own", "own")  # the buyer's own agent: no listing, no rating

    await store.write(seed)

    def query(**filters: Any) -> Any:
        args: dict[str, Any] = {"all_of": [], "any_of": [], "status": None, "service_tier": None, "text": None, "limit": 10, "cursor": None}
        return store.read(lambda conn: agent_ops.query(conn, "buyer", **{**args, **filters}))

    everyone, _ = await query()
    assert len(everyone) == 7
    best, _ = await query(sort="rating")
    assert [r["agent_id"] for r in best] == ["agt_proven_1", "agt_proven_0", "agt_lucky_1", "agt_lucky_0", "agt_poor_1", "agt_poor_0"]
    good, _ = await query(min_rating=3.2, sort="name")
    assert [r["agent_name"] for r in good] == ["lucky-0", "lucky-1", "proven-0", "proven-1"]
    pages, cursor = [], None
    while True:  # best first, a page at a time
        rows, cursor = await query(sort="rating", min_rating=3.2, limit=3, cursor=cursor)
        pages += [r["agent_id"] for r in rows]
        if cursor is None:
            break
    assert pages == ["agt_proven_1", "agt_proven_0", "agt_lucky_1", "agt_lucky_0"]
    reputed, _ = await query(sort="reputation", min_reputation=0)
    assert len(reputed) == 6  # every marketplace agent; the buyer's own stands for no listing
    standing = await store.read(lambda conn: agent_ops.standing(conn, ["agt_poor_0", "agt_own"]))
    assert list(standing) == ["agt_poor_0"] and standing["agt_poor_0"]["listing_id"] == "lst_poor"
    assert standing["agt_poor_0"]["rating"] == bayesian(5, 3) and standing["agt_poor_0"]["rating_count"] == 3

    counts = await store.read(lambda conn: agent_ops.counts(conn, "buyer"))
    assert counts["by_status"] == {"active": 7} and counts["by_rating"] == {"4": 2, "3": 2, "2": 2}  # 4.6, 3.33, 2.5
    rated = await store.read(lambda conn: agent_ops.counts(conn, "buyer", min_rating=3.2))
    assert rated["by_status"] == {"active": 4} and rated["by_rating"] == {"4": 2, "3": 2}
