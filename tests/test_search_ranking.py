"""Search ranking fixes found by the search benchmark (``python -m benchmarks search``): every language a query names
counts, words with accents match as the indexes hold them, a word of two letters is no prefix, a typo correction stays
near the word typed, a pricing unit said with "not" is no constraint, and a search says when every document has its
vector."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from agora.search.query import Vocabulary, parse
from agora.search.vectors import FRESH_SECONDS
from agora.store import open_store
from agora.store.ops import search as search_ops
from agora.store.schema import search_documents as docs
from agora.store.search_documents import listing_document
from tests.conftest import rare_word, unique, until
from tests.hubproc import HubProcess
from tests.test_search import names, publish, search


def test_a_listing_rises_by_the_share_of_the_languages_asked_for_that_it_states(admin: httpx.Client):
    topic = rare_word()
    both = publish(admin, unique("FrEn"), f"{topic} document translation", languages=["fr", "en"])["agent_name"]
    english = publish(admin, unique("En"), f"{topic} document translation", languages=["en"])["agent_name"]
    german = publish(admin, unique("De"), f"{topic} document translation", languages=["de"])["agent_name"]
    found = search(admin, f"{topic} translation from French to English", limit=100)  # the shared hub holds others' translators too
    assert names(found, {both, english, german}) == [both, english, german]
    why = {hit["name"]: hit["why"]["adjustments"] for hit in found["results"]}
    assert why[both] == ["languages match: fr, en"]
    assert why[english] == ["languages partly match: en of fr, en"]  # English alone cannot translate from French
    assert why[german] == ["languages differ: fr, en"]


def test_words_with_accents_match_as_the_index_holds_them(admin: httpx.Client):
    topic = rare_word()
    manuals = publish(admin, unique("Handbuch"), f"{topic}: Übersetzung technischer Handbücher ins Englische.")["agent_name"]
    digests = publish(admin, unique("Resumes"), f"{topic}: résumés automatiques d'articles en français.")["agent_name"]
    for query, wanted, marked in (
        ("übersetzung handbücher", manuals, {"übersetzung", "handbücher"}),
        ("résumés en français", digests, {"résumés", "français"}),
    ):
        found = search(admin, query, limit=100)
        assert wanted in names(found), query  # split at the accents, the words matched nothing
        hit = next(h for h in found["results"] if h["name"] == wanted)
        text = next(h for h in hit["why"]["highlights"] if h["field"] == "description")
        assert {text["text"][s["start"] : s["end"]].lower() for s in text["spans"]} >= marked


def test_a_word_of_two_letters_is_matched_whole_and_a_longer_one_also_as_a_beginning(admin: httpx.Client):
    word = rare_word()
    mine = publish(admin, unique("Prefixed"), f"{word} analytics")["agent_name"]
    assert mine not in names(search(admin, word[:2], limit=100))  # "zq": every word starting so is no match for it
    # Six letters: the hub is shared, and its other rare words begin "zq" too (four letters collided one time in ~10).
    assert names(search(admin, word[:6], limit=100)) == [mine]


def _listing(n: int, listed: bool) -> dict[str, Any]:
    """Listing ``n`` says its word n + 1 times: the more, the higher it ranks."""
    return {"listing_id": f"lst_{n:02d}", "tenant_id": "publisher", "status": "listed" if listed else "unlisted", "agent_name": f"L{n}",
            "category": "test", "description": " ".join(["zqranked"] * (n + 1) + ["filler"] * 20)}  # fmt: skip


@pytest.mark.parametrize("ranked_first", [search_ops.RANKED_FIRST, 2])
async def test_the_full_text_candidates_are_the_best_that_pass_the_filters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ranked_first: int):
    monkeypatch.setattr(search_ops, "RANKED_FIRST", ranked_first)  # 2: the best matches fail the filters, all are read
    store = open_store(None, tmp_path)
    await store.start()
    try:
        now = datetime.now(UTC)
        await store.write(lambda conn: [search_ops.put(conn, listing_document(_listing(n, listed=n < 8), now)) for n in range(12)])
        rows = await store.read(lambda conn: dict(conn.execute(select(docs.c.ref_id, docs.c.doc_seq)).all()))
        ids = {seq: ref for ref, seq in rows.items()}

        async def best(viewer: search_ops.Viewer, limit: int) -> list[str]:
            found = await store.read(search_ops.lexical, ["zqrank"], [], search_ops.Filters(kinds=("listing",)), viewer, limit)
            return [ids[seq] for seq, _ in found]

        assert await best(search_ops.Viewer(None, sees_all=True), 3) == ["lst_11", "lst_10", "lst_09"]
        assert await best(search_ops.Viewer("another"), 3) == ["lst_07", "lst_06", "lst_05"]  # the unlisted four: hidden
        assert await best(search_ops.Viewer("another"), 20) == [f"lst_{n:02d}" for n in range(7, -1, -1)]
    finally:
        await store.close()


def test_a_correction_is_one_edit_away_unless_the_word_is_long():
    vocabulary = Vocabulary({"speaker": 4, "receipt": 2, "translat": 9, "document": 5})
    assert vocabulary.correct("recipt") == "receipt"  # a letter left out
    assert vocabulary.correct("transalt") == "translat"  # two letters swapped: one edit
    assert vocabulary.correct("sweater") is None  # two edits from "speaker": another word, not a typo of it
    assert vocabulary.correct("dokumant") == "document"  # two edits in a word of eight letters


def test_terms_in_most_documents_are_not_matched_on_while_a_rarer_one_remains():
    vocabulary = Vocabulary({"team": 500, "support": 60, "korean": 3}, documents=1_000)
    assert vocabulary.selective(["team", "support", "korean", "unseen"]) == ["support", "korean", "unseen"]
    assert vocabulary.selective(["team"]) == ["team"]  # nothing rarer: the common term is all the query has
    assert Vocabulary({"team": 500}).selective(["team", "support"]) == ["team", "support"]  # no size: all matched


def test_a_pricing_unit_said_with_not_asks_for_nothing():
    said = parse("summarization billed per hour, not per request").constraints
    assert said.pricing_models == ["per_hour"] and said.understood == ["per hour"]
    assert parse("no hourly billing please").constraints.pricing_models == []


def _embedded_when_settled(admin: httpx.Client) -> int:
    """Once a search says no document waits for a vector, the count of vectors searched a refresh later."""
    until(lambda: search(admin, "audio transcripts", mode="semantic")["semantic"].endswith(", none waiting for their vector"),
          "documents kept waiting for their vectors", timeout=90)  # fmt: skip
    time.sleep(FRESH_SECONDS + 0.1)
    semantic = search(admin, "audio transcripts", mode="semantic")["semantic"]
    assert semantic.startswith("on: local:all-MiniLM-L6-v2, ") and semantic.endswith(" documents embedded, none waiting for their vector")
    return int(semantic.split(", ")[1].split()[0])


def test_a_search_says_when_every_document_has_its_vector(tmp_path: Path):
    hub = HubProcess(tmp_path / "hub", extra_args=["--embedder", "local", "--no-local-node"]).start(timeout=60)
    try:
        with hub.client() as admin:
            before = _embedded_when_settled(admin)  # the hub's own tools
            scribe = publish(admin, "MinuteTaker", "Speech recognition that produces written transcripts of audio recordings.")
            assert _embedded_when_settled(admin) == before + 1
            # Settled, the new document is among the vectors searched: found by meaning alone.
            found = search(admin, "turn my voice memos into text", mode="semantic")
            assert names(found) == [scribe["agent_name"]] and found["results"][0]["why"]["lexical_rank"] is None
            # The same words again (the next page, the chat asking again): the query's vector is kept, not made anew.
            again = search(admin, "turn my voice memos into text", mode="semantic")
            assert names(again) == names(found)
            assert again["embedding_ms"] == 0 < found["embedding_ms"], (found["embedding_ms"], again["embedding_ms"])
    finally:
        hub.stop()
