"""agora.marketplace.search: ranking by the engine's full text, filters and constraints read from words, the index
following every write, tenancy, bad input, and meaning (vectors from the packaged model) fused with the words.

Hubs here are shared with other tests, so each test's documents carry words of their own (``rare_word``): a search
only ever finds that test's things.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import call, expect_error, fresh_postgres_url, new_tenant, ok, rare_word, unique, until
from tests.hubproc import HubProcess


def publish(admin: httpx.Client, name: str, description: str, **fields: Any) -> dict[str, Any]:
    body = {
        "agent_name": name, "description": description, "repository": {"url": "https://example.com/agent.git"},
        "build_config": {"start_command": "python agent.py"}, **fields,
    }  # fmt: skip
    return ok(call(admin, "agora.marketplace.publish", **body))


def search(client: httpx.Client, q: str, **args: Any) -> dict[str, Any]:
    """The search, a page of 100 unless told: a query's common words ("legal translation") also find other tests'
    listings on a shared hub, and the first page of 10 could end before a test's own weaker match."""
    return ok(call(client, "agora.marketplace.search", q=q, **{"limit": 100, **args}))


def names(found: dict[str, Any], among: set[str] | None = None) -> list[str]:
    """The results' names in order (only those ``among`` a test's own, when its query has common words too)."""
    return [hit["name"] for hit in found["results"] if among is None or hit["name"] in among]


def test_the_best_match_comes_first_and_says_why(admin: httpx.Client):
    topic = rare_word()
    best = publish(admin, unique("LegalTranslator"), f"Translates {topic} legal contracts from French to English.",
                   category="translation", capabilities=["translation", "legal"])  # fmt: skip
    other = publish(admin, unique("Chatty"), f"Small talk about {topic} and the weather.", category="social")
    found = search(admin, f"{topic} legal translation")
    assert names(found, {best["agent_name"], other["agent_name"]}) == [best["agent_name"], other["agent_name"]]
    assert found["results"][0]["name"] == best["agent_name"]
    assert found["mode"] == "lexical" and found["semantic"].startswith("off")
    first = found["results"][0]
    assert first["kind"] == "listing" and first["id"] == best["listing_id"] and first["why"]["lexical_rank"] == 1
    assert set(first["why"]["matched_fields"]) >= {"tags", "description"}
    description = next(h for h in first["why"]["highlights"] if h["field"] == "description")
    marked = {description["text"][s["start"] : s["end"]].lower() for s in description["spans"]}
    assert {topic, "legal"} <= marked and marked <= {topic, "legal", "translates"}, marked
    assert first["marketplace_info"]["availability"]["available"] is True


def test_constraints_said_in_words_filter_and_prefer(admin: httpx.Client):
    topic = rare_word()
    cheap_fr = publish(admin, unique("CheapFr"), f"{topic} document translation", languages=["fr", "en"], pricing={"price": "0.004"})
    cheap_de = publish(admin, unique("CheapDe"), f"{topic} document translation", languages=["de", "en"], pricing={"price": "0.005"})
    dear = publish(admin, unique("Dear"), f"{topic} document translation", languages=["fr"], pricing={"price": "0.02"})
    hourly = publish(admin, unique("Hourly"), f"{topic} document translation", pricing={"model": "per_hour", "price": "0.001"})
    mine = {cheap_fr["agent_name"], cheap_de["agent_name"], dear["agent_name"], hourly["agent_name"]}
    found = search(admin, f"{topic} translation from French, under a cent a request")
    assert names(found, mine) == [cheap_fr["agent_name"], cheap_de["agent_name"]]  # French preferred; the others filtered
    reading = found["interpretation"]
    assert reading["max_price"] == "0.01" and reading["pricing_models"] == ["per_request", "hybrid"] and reading["languages"] == ["fr"]
    assert "under a cent a request" in reading["understood"]
    assert found["results"][0]["why"]["adjustments"] == ["languages match: fr"]
    assert next(h for h in found["results"] if h["name"] == cheap_de["agent_name"])["why"]["adjustments"] == ["languages differ: fr"]
    # Read literally, the same words filter nothing.
    literal = search(admin, f"{topic} translation from French, under a cent a request", interpret=False)
    assert set(names(literal, mine)) == mine


def test_explicit_filters(admin: httpx.Client):
    topic = rare_word()
    eu = publish(admin, unique("EuOcr"), f"{topic} OCR", category="vision", capabilities=["ocr", "pdf"],
                 host_requirements={"preferred_region": "eu-west"}, languages=["de"], pricing={"price": "0.01"})  # fmt: skip
    us = publish(admin, unique("UsOcr"), f"{topic} OCR", category="vision", capabilities=["ocr"],
                 host_requirements={"preferred_region": "us-east"}, pricing={"model": "hybrid", "price": "0.002", "base_fee": "1"})  # fmt: skip
    other = publish(admin, unique("Other"), f"{topic} OCR", category="documents", capabilities=["ocr"])
    assert set(names(search(admin, topic, category="vision"))) == {eu["agent_name"], us["agent_name"]}
    assert names(search(admin, topic, capabilities=["ocr", "pdf"])) == [eu["agent_name"]]
    assert names(search(admin, topic, region="eu-")) == [eu["agent_name"]]
    assert names(search(admin, topic, region="us-east")) == [us["agent_name"]]
    assert names(search(admin, topic, languages=["de"])) == [eu["agent_name"]]
    assert set(names(search(admin, topic, max_price="0.005"))) == {us["agent_name"], other["agent_name"]}
    assert names(search(admin, topic, pricing_models=["hybrid"])) == [us["agent_name"]]
    assert names(search(admin, topic, kinds=["agent"])) == []


def test_a_misspelled_word_is_corrected_to_the_indexed_one(admin: httpx.Client):
    topic = rare_word()
    listed = publish(admin, unique("Flow"), f"Transcribes {topic} podcasts into text")
    i = next(i for i in range(2, len(topic) - 1) if topic[i] != topic[i + 1])
    misspelled = topic[:i] + topic[i + 1] + topic[i] + topic[i + 2 :]  # two (different) letters swapped
    # A word indexed a moment ago enters the vocabulary the corrections use within a few seconds.
    found = until(lambda: f if (f := search(admin, f"{misspelled} podcasts"))["interpretation"]["corrections"] else None, "never corrected", 15)
    assert found["interpretation"]["corrections"] == {misspelled: topic}
    assert names(found) == [listed["agent_name"]]


def test_the_index_follows_every_write(hub: HubProcess, admin: httpx.Client):
    before, after = rare_word(), rare_word()
    listing = publish(admin, unique("Versioned"), f"does {before} things")
    assert names(search(admin, before)) == [listing["agent_name"]]
    publish(admin, listing["agent_name"], f"does {after} things now")  # its next version
    assert names(search(admin, before)) == [] and names(search(admin, after)) == [listing["agent_name"]]

    customer = new_tenant(admin, hub)
    assert names(search(customer, after)) == [listing["agent_name"]]  # a listed listing is every tenant's to find
    ok(call(admin, "agora.marketplace.unlist", listing=listing["listing_id"]))
    assert names(search(customer, after)) == []  # unlisted: gone for others
    assert names(search(admin, after)) == [listing["agent_name"]]  # its publisher still finds it

    word = rare_word()
    agent = ok(call(customer, "agora.agents.register", agent_name=unique("helper"), description=f"answers {word} questions"))
    assert [h["id"] for h in search(customer, word)["results"]] == [agent["agent_id"]]
    assert search(customer, word)["results"][0]["status"] == "active"
    renamed = rare_word()
    ok(call(customer, "agora.agents.update", agent=agent["agent_id"], description=f"answers {renamed} questions"))
    assert names(search(customer, word)) == [] and len(names(search(customer, renamed))) == 1
    ok(call(customer, "agora.agents.deregister", agent=agent["agent_id"]))
    assert names(search(customer, renamed)) == []


def test_a_tenant_never_finds_another_tenant_s_agents(hub: HubProcess, admin: httpx.Client):
    word = rare_word()
    mine, theirs = new_tenant(admin, hub), new_tenant(admin, hub)
    ok(call(mine, "agora.agents.register", agent_name=unique("mine"), description=f"{word} specialist"))
    ok(call(theirs, "agora.agents.register", agent_name=unique("theirs"), description=f"{word} specialist"))
    for client in (mine, theirs):
        found = search(client, f"{word} specialist", kinds=["agent"])
        assert len(found["results"]) == 1 and found["next_cursor"] is None
    assert len(search(admin, word, kinds=["agent"])["results"]) == 2  # the admin sees every tenant


def test_pages_follow_each_other(admin: httpx.Client):
    topic = rare_word()
    published = {publish(admin, unique("Paged"), f"{topic} number {i}")["agent_name"] for i in range(7)}
    first = search(admin, topic, limit=4)
    second = search(admin, topic, limit=4, cursor=first["next_cursor"])
    assert len(first["results"]) == 4 and len(second["results"]) == 3 and second["next_cursor"] is None
    assert set(names(first)) | set(names(second)) == published


def test_bad_input_is_refused_and_changes_nothing(admin: httpx.Client):
    expect_error(call(admin, "agora.marketplace.search", q=""), 422, "invalid_argument")
    expect_error(call(admin, "agora.marketplace.search", q="x" * 501), 422, "invalid_argument")
    huge = admin.post("/agora/marketplace/search", content=b'{"q": "' + b"y" * 10_000_000 + b'"}', headers={"Content-Type": "application/json"})
    assert huge.status_code == 413, huge.text
    error = expect_error(call(admin, "agora.marketplace.search", q="ocr", mode="semantic"), 400, "invalid_argument")
    assert "embedder" in error["message"] and error["details"] == {"field": "mode"}
    expect_error(call(admin, "agora.marketplace.search", q="ocr", cursor="not-a-cursor"), 400, "invalid_argument")
    assert search(admin, "ocr", region="%-")["results"] == []  # a region prefix is text, never a LIKE pattern
    for query in ('"', "*", "OR AND NOT", "-- ;drop table x", "near(a b)", "日本語の翻訳", "🙂"):
        search(admin, query)  # query syntax never reaches the engine: an answer, never a 500


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def embedding_hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub with the packaged model: vectors stored in the rows on either engine."""
    database_url = fresh_postgres_url(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None
    hub = HubProcess(tmp_path_factory.mktemp("search-embedded"), database_url, extra_args=["--embedder", "local"]).start(timeout=60)
    yield hub
    hub.stop()


def test_meaning_finds_what_shares_no_word(embedding_hub: HubProcess):
    with embedding_hub.client() as admin:
        scribe = publish(admin, "MinuteTaker", "Speech recognition that produces written transcripts of audio recordings.")
        publish(admin, "PixelPainter", "Generates illustrations and logos from a sketch.")
        publish(admin, "LedgerBot", "Reconciles bank statements with your accounting books.")
        query = "turn my voice memos into text"
        assert names(search(admin, query, mode="lexical")) == []  # no word in common
        found = until(lambda: (f := search(admin, query)) and f["results"] and f, "the documents were never embedded", timeout=120)
        assert found["mode"] == "hybrid" and found["semantic"].startswith("on: local:all-MiniLM-L6-v2")
        assert names(found)[0] == scribe["agent_name"] and found["results"][0]["why"]["semantic_rank"] == 1
        # The query was embedded by the first of these searches and kept since (0 ms when kept: test_search_ranking).
        assert found["results"][0]["why"]["similarity"] > 0.3 and found["embedding_ms"] is not None
        assert "PixelPainter" not in names(found)  # found by meaning alone only when close enough
        semantic = search(admin, "bookkeeping for my bank account", mode="semantic")
        assert names(semantic)[0] == "LedgerBot" and semantic["results"][0]["why"]["lexical_rank"] is None
        # Both retrievers agree: fused, it stays first with a lexical and a semantic rank.
        both = search(admin, "speech recognition transcripts")
        assert names(both)[0] == scribe["agent_name"] and both["results"][0]["why"]["lexical_rank"] == 1


def test_a_hub_rebuilds_an_index_it_did_not_build(tmp_path: Path):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client() as admin:
            word = rare_word()
            listing = publish(admin, unique("Rebuilt"), f"{word} agent")
    finally:
        hub.stop()
    with sqlite3.connect(tmp_path / "hub" / "agora.db") as db:  # as a hub of another version would leave it
        db.execute("DELETE FROM search_documents")
        db.execute("UPDATE system_state SET value = '0' WHERE key = 'search_index_version'")
    hub.start()
    try:
        with hub.client() as admin:
            until(lambda: names(search(admin, word)) == [listing["agent_name"]], "the index was not rebuilt")
            assert len(search(admin, "messages", kinds=["service"], limit=100)["results"]) >= 3  # the catalog's tools too
    finally:
        hub.stop()


def test_the_discovery_tools_rank_by_q(hub: HubProcess, admin: httpx.Client):
    topic = rare_word()
    best = publish(admin, unique("Ranked"), f"{topic} {topic} invoices", category="finance")
    publish(admin, unique("Other"), f"{topic} weather", category="finance")
    publish(admin, unique("Elsewhere"), f"{topic} invoices", category="travel")
    found = ok(call(admin, "agora.marketplace.discover", q=f"{topic} invoices", category="finance"))
    assert [a["agent_name"] for a in found["agents"]][0] == best["agent_name"] and found["total"] == 2
    assert found["agents"][0]["marketplace_info"]["availability"]["available"] is True
    expect_error(call(admin, "agora.marketplace.discover", q=topic, text=topic), 400, "invalid_argument")

    customer = new_tenant(admin, hub)
    word = rare_word()
    for name, description in (("alpha", f"{word} reports"), ("beta", f"{word} {word} reports"), ("gamma", "nothing here")):
        ok(call(customer, "agora.agents.register", agent_name=name, description=description, capabilities=["reports"]))
    agents = ok(call(customer, "agora.query.agents", q=f"{word} reports", capabilities=["reports"]))
    assert [a["agent_name"] for a in agents["agents"]] == ["beta", "alpha", "gamma"]  # gamma: its capability only
    assert ok(call(customer, "agora.query.agents", q=word, status="offline"))["agents"] == []
    expect_error(call(customer, "agora.query.agents", q=word, sort="name"), 400, "invalid_argument")


def test_an_external_mcp_server_s_tools_are_found_as_its_tenant_sees_them(hub: HubProcess, admin: httpx.Client):
    from tests.test_catalog import _stdio_server

    server = ok(call(admin, "agora.mcp_servers.register", **_stdio_server()))["name"]
    customer = new_tenant(admin, hub)
    def imported() -> list[dict[str, Any]]:
        return [h for h in search(customer, "text in capitals", kinds=["service"])["results"] if h["id"].startswith(f"ext.{server}.")]

    found = until(imported, "the imported tools were never indexed")
    assert found[0]["id"] == f"ext.{server}.shout" and found[0]["category"] == f"mcp:{server}"
    ok(call(admin, "agora.mcp_servers.remove", name=server))
    until(lambda: not imported(), "a removed server's tools stayed findable")


def test_a_region_code_and_a_success_rate_said_in_words_are_read_whole():
    from agora.search.query import parse

    reliable = parse("ocr at least 90% reliability")
    assert reliable.words == ["ocr"] and reliable.constraints.min_success_rate == 0.9
    coded = parse("a translator hosted in eu-central-1 over 95% success rate")
    assert coded.constraints.regions == ["eu-central"] and coded.constraints.min_success_rate == 0.95
    assert coded.words == ["translator", "hosted"]
    assert parse("summaries from Europe").constraints.regions == ["eu-"]


def test_best_rated_and_a_star_floor_said_in_words_are_read():
    from agora.search.query import parse

    best = parse("best rated translator under $0.01 a request")
    assert (best.words, best.constraints.sort, str(best.constraints.max_price)) == (["translator"], "rating", "0.01")
    assert best.constraints.understood == ["under $0.01 a request", "best rated"]
    for said, floor in (("a calculator rated 4+", 4.0), ("summariser with at least 4.5 stars", 4.5), ("ocr, 4 stars or more", 4.0)):
        assert parse(said).constraints.min_rating == floor, said
    reputed = parse("the most reputable speech to text")
    assert reputed.constraints.sort == "reputation" and reputed.words == ["speech", "text"]
    assert parse("rated r movies summarizer").constraints.min_rating is None  # a rating needs a number of stars


def test_a_percentage_is_never_read_as_a_price():
    from agora.search.query import parse

    assert parse("ocr below 5% errors").constraints.max_price is None
    floor = parse("no less than 95% success").constraints
    assert floor.max_price is None and floor.min_success_rate == 0.95
    assert parse("at least 99.9% success").constraints.min_success_rate == 0.999
    assert str(parse("under 1.5 dollars").constraints.max_price) == "1.5"


def test_a_term_another_one_matches_as_a_prefix_is_matched_once():
    from agora.store.ops.search import fts5_query, pg_tsquery

    # "summarise" and "summary" stem apart; "summar"* matches both, so "summaris"* would score a document twice
    assert fts5_query(["summaris", "summar", "research"], []) == '"summar"* OR "research"*'
    assert pg_tsquery(["summaris", "summar", "research"], []) == "'summar':* | 'research':*"
    assert fts5_query(["cent", "center", "ce"], ["centr"]) == '"cent"* OR "ce"'  # "ce" is matched whole, not a prefix
    assert fts5_query(["translat"], ["transl"]) == '"transl"*'
