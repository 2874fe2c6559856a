"""The search and chat evaluation data (benchmarks/search_eval, issue 29) is whole and consistent: every entry passes
the hub's own input models and the issue's stricter rules, judgments and intents name real entries, and the
synthetic generator is valid and deterministic."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agora_sdk.wire.agents import RegisterAgent
from agora_sdk.wire.marketplace import PublishListing
from benchmarks.search_eval import synthetic

DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "search_eval"
REGIONS = {"us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast"}
REGION_GROUPS = {"us", "eu", "ap"}
PRICING_MODELS = {"per_request", "per_minute", "per_hour", "hybrid"}
INTENTS = {"search", "details", "stats", "start_instance", "register_agent"}
INTENT_PARAMS = {
    "search": {"need", "category", "max_price", "region", "min_success_rate", "language", "pricing_model"},
    "details": {"name"},
    "stats": {"category"},
    "start_instance": {"name"},
    "register_agent": {"name", "capabilities"},
}
QUERY_TAGS = {"typo", "paraphrase", "constraint", "non-english", "long", "jargon", "decoy", "multi-need", "no-relevant"}
ISO_639_1 = set(
    "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv dz ee el en "
    "eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja "
    "jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb "
    "nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq "
    "sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu".split()
)
NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
CAPABILITY = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
CATEGORY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
DECIMAL = re.compile(r"\d+(\.\d+)?")
LISTING_KEYS = {"id", "kind", "agent_name", "description", "category", "capabilities", "pricing"}
AGENT_KEYS = {"id", "kind", "agent_name", "description", "capabilities"}


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


CORPUS: list[dict[str, Any]] = load("corpus.json")
BY_ID = {entry["id"]: entry for entry in CORPUS}
BY_NAME = {entry["agent_name"]: entry for entry in CORPUS}
CATEGORIES = {entry["category"] for entry in CORPUS if entry["kind"] == "listing"}
QUERIES: list[dict[str, Any]] = load("queries.json")
DEV: list[dict[str, Any]] = load("chat_intents_dev.json")
HELDOUT: list[dict[str, Any]] = load("chat_intents_heldout.json")
HELDOUT2: list[dict[str, Any]] = load("chat_intents_heldout2.json")
TRAIN: list[dict[str, Any]] = load("chat_intents_train.json")


def hub_problem(entry: dict[str, Any]) -> str | None:
    """What the hub's own input model says of the entry (publish for a listing, register for an agent)."""
    try:
        if entry["kind"] == "listing":
            PublishListing(
                agent_name=entry["agent_name"], description=entry["description"], category=entry["category"],
                capabilities=entry["capabilities"], pricing=entry["pricing"],
                repository={"url": "https://git.example.com/listing.git"}, build_config={"start_command": "./run"},
            )
        else:
            RegisterAgent(agent_name=entry["agent_name"], capabilities=entry["capabilities"],
                          description=entry["description"])
    except ValidationError as error:
        return str(error)
    return None


def entry_problems(entry: dict[str, Any]) -> list[str]:
    """The issue's rules for a corpus entry, stricter than the hub's in places (lowercase capabilities)."""
    problems = []
    listing = entry["kind"] == "listing"
    optional = {"region", "languages"} if listing else set()
    required = LISTING_KEYS if listing else AGENT_KEYS
    if not required <= entry.keys() <= required | optional:
        problems.append(f"keys {sorted(entry)}")
    if not NAME.fullmatch(entry["agent_name"]):
        problems.append("agent_name")
    if not 0 < len(entry["description"]) <= 4000:
        problems.append("description length")
    capabilities = entry["capabilities"]
    if not 0 < len(capabilities) <= 50 or len(set(capabilities)) != len(capabilities):
        problems.append("capability count or repeats")
    problems += [f"capability {c!r}" for c in capabilities if not CAPABILITY.fullmatch(c)]
    if listing:
        problems += listing_problems(entry)
    if problem := hub_problem(entry):
        problems.append(problem)
    return problems


def listing_problems(entry: dict[str, Any]) -> list[str]:
    problems = []
    if not CATEGORY.fullmatch(entry["category"]):
        problems.append("category")
    pricing = entry["pricing"]
    extra = {"base_fee"} if pricing.get("model") == "hybrid" else set()
    if not {"model", "price", "currency"} <= pricing.keys() <= {"model", "price", "currency"} | extra:
        problems.append(f"pricing keys {sorted(pricing)}")
    if pricing.get("model") not in PRICING_MODELS:
        problems.append("pricing model")
    if not all(isinstance(value, str) and DECIMAL.fullmatch(value) for value in (pricing.get("price"),
                                                                                 pricing.get("base_fee", "0"))):
        problems.append("price is not a decimal string")
    if "region" in entry and entry["region"] not in REGIONS:
        problems.append("region")
    languages = entry.get("languages", ["en"])
    if not languages or len(set(languages)) != len(languages) or not set(languages) <= ISO_639_1:
        problems.append("languages")
    return problems


def test_every_corpus_entry_is_valid() -> None:
    problems = {entry.get("id"): found for entry in CORPUS if (found := entry_problems(entry))}
    assert problems == {}


def test_the_entry_check_refuses_what_the_rules_refuse() -> None:
    listing = BY_NAME["LexiTranslate-FR"]
    broken = {**listing, "capabilities": ["Translation"], "region": "mars-1", "languages": ["french"],
              "pricing": {"model": "per_year", "price": "-1", "currency": "USD"}}
    found = entry_problems(broken)
    assert {"capability 'Translation'", "region", "languages", "pricing model", "price is not a decimal string"} <= set(
        found)
    assert any("pricing.model" in problem for problem in found)  # the hub's model refuses it too
    assert entry_problems({**BY_NAME["invoice-parser"], "agent_name": "system"}) != []  # a reserved name


def test_corpus_ids_and_names_are_unique() -> None:
    ids = [entry["id"] for entry in CORPUS]
    assert len(set(ids)) == len(ids)
    for entry in CORPUS:
        assert re.fullmatch(("L" if entry["kind"] == "listing" else "A") + r"\d{4}", entry["id"]), entry["id"]
    names = Counter(entry["agent_name"].lower() for entry in CORPUS)
    assert [name for name, count in names.items() if count > 1] == []


def test_corpus_is_large_and_varied() -> None:
    kinds = Counter(entry["kind"] for entry in CORPUS)
    assert len(CORPUS) >= 320 and set(kinds) == {"listing", "agent"}
    assert 0.6 <= kinds["listing"] / len(CORPUS) <= 0.72  # about two thirds listings
    assert len(CATEGORIES) >= 22
    listings = [entry for entry in CORPUS if entry["kind"] == "listing"]
    assert {entry["pricing"]["model"] for entry in listings} == PRICING_MODELS
    assert {entry["region"] for entry in listings if "region" in entry} == REGIONS
    assert any(entry["pricing"]["price"] == "0" for entry in listings)
    assert any("region" not in entry for entry in listings) and any("languages" not in entry for entry in listings)


def constraint_violations(entry: dict[str, Any], constraints: dict[str, Any]) -> list[str]:
    """Which of a query's hard constraints a listing does not meet (README: ``constraints``)."""
    price, violated = Decimal(entry["pricing"]["price"]), []
    if not set(constraints.get("languages", [])) <= set(entry.get("languages", [])):
        violated.append("languages")
    if "regions" in constraints and entry.get("region") not in constraints["regions"]:
        violated.append("region")
    if "pricing_models" in constraints and entry["pricing"]["model"] not in constraints["pricing_models"]:
        violated.append("pricing model")
    if "price_below" in constraints and not price < Decimal(constraints["price_below"]):
        violated.append("price")
    if constraints.get("free") and price != 0:
        violated.append("free")
    return violated


def test_queries_are_complete_and_judge_existing_entries() -> None:
    assert [query["id"] for query in QUERIES] == [f"Q{n:03d}" for n in range(1, 101)]
    texts = [query["query"].strip().lower() for query in QUERIES]
    assert len(set(texts)) == 100 and all(texts)
    for query in QUERIES:
        assert query.keys() <= {"id", "query", "judgments", "notes", "tags", "constraints"}, query["id"]
        assert query["notes"].strip(), query["id"]
        assert set(query["tags"]) <= QUERY_TAGS, query["id"]
        assert set(query["judgments"]) <= BY_ID.keys(), query["id"]
        assert set(query["judgments"].values()) <= {1, 2, 3}, query["id"]
        assert ("no-relevant" in query["tags"]) == (not query["judgments"]), query["id"]
    assert sum("no-relevant" in query["tags"] for query in QUERIES) >= 3


def test_judgments_respect_the_hard_constraints_of_their_query() -> None:
    """An entry that violates a hard constraint stated in the query is graded at most 1."""
    overgraded = [
        (query["id"], BY_ID[entry_id]["agent_name"], violated)
        for query in QUERIES if "constraints" in query
        for entry_id, grade in query["judgments"].items()
        if grade > 1 and BY_ID[entry_id]["kind"] == "listing"
        and (violated := constraint_violations(BY_ID[entry_id], query["constraints"]))
    ]
    assert overgraded == []


def test_the_constraint_check_catches_an_overgraded_listing() -> None:
    listing = BY_NAME["Babel.Pro"]  # per_request 0.012, us-east, no Hindi
    assert constraint_violations(listing, {"languages": ["hi"], "regions": ["eu-west"], "price_below": "0.01"}) == [
        "languages", "region", "price"]
    assert constraint_violations(listing, {"languages": ["fr", "en"], "pricing_models": ["per_request"]}) == []


def intent_problems(intent: dict[str, Any]) -> list[str]:
    params, kind = intent["params"], intent["intent"]
    if kind not in INTENTS or not params.keys() <= INTENT_PARAMS[kind]:
        return [f"intent {kind} with {sorted(params)}"]
    problems = []
    if kind == "search" and not params.get("need", "").strip():
        problems.append("search without a need")
    if "category" in params and params["category"] not in CATEGORIES:
        problems.append("category")
    if "max_price" in params and not DECIMAL.fullmatch(params["max_price"]):
        problems.append("max_price")
    if "region" in params and params["region"] not in REGIONS | REGION_GROUPS:
        problems.append("region")
    if "language" in params and params["language"] not in ISO_639_1:
        problems.append("language")
    if "pricing_model" in params and params["pricing_model"] not in PRICING_MODELS:
        problems.append("pricing_model")
    if "min_success_rate" in params and not 0 <= params["min_success_rate"] <= 1:
        problems.append("min_success_rate")
    if kind in ("details", "start_instance") and params["name"] not in BY_NAME:
        problems.append("names no corpus entry")
    if kind == "start_instance" and BY_NAME.get(params["name"], {}).get("kind") != "listing":
        problems.append("starts something that is not a listing")
    if kind == "register_agent":
        problems += registration_problems(params)
    return problems


def registration_problems(params: dict[str, Any]) -> list[str]:
    problems = []
    if params["name"].lower() in {name.lower() for name in BY_NAME}:
        problems.append("registers a name the corpus has")
    try:
        RegisterAgent(agent_name=params["name"], capabilities=params["capabilities"])
    except ValidationError as error:
        problems.append(str(error))
    if not params["capabilities"] or not all(CAPABILITY.fullmatch(c) for c in params["capabilities"]):
        problems.append("capabilities")
    return problems


@pytest.mark.parametrize(("name", "messages", "prefix"),
                         [("dev", DEV, "D"), ("heldout", HELDOUT, "H"), ("heldout2", HELDOUT2, "B"),
                          ("train", TRAIN, "T")])
def test_chat_intents_are_valid(name: str, messages: list[dict[str, Any]], prefix: str) -> None:
    assert len(messages) == {"dev": 100, "heldout": 50, "heldout2": 50, "train": 250}[name]
    width = len(str(len(messages)))
    assert [m["id"] for m in messages] == [f"{prefix}{n:0{width}d}" for n in range(1, len(messages) + 1)]
    assert all(m.keys() == {"id", "message", "intent", "params"} for m in messages)
    problems = {m["id"]: found for m in messages if (found := intent_problems(m))}
    assert problems == {}
    # The mix: about 45% search, 20% details, 15% stats, 12% start_instance, 8% register_agent.
    share = Counter(m["intent"] for m in messages)
    mix = {"search": 0.45, "details": 0.20, "stats": 0.15, "start_instance": 0.12, "register_agent": 0.08}
    assert all(abs(share[kind] / len(messages) - expected) <= 0.02 for kind, expected in mix.items()), share


def normal(text: str) -> str:
    """A message's words in lowercase, so punctuation, case and spacing do not make two messages different."""
    return " ".join(re.findall(r"\w+", text.lower()))


def test_heldout_messages_are_not_dev_messages() -> None:
    dev = {normal(m["message"]) for m in DEV}
    assert len(dev) == len(DEV)
    assert [m["id"] for m in HELDOUT if normal(m["message"]) in dev] == []
    assert len({normal(m["message"]) for m in HELDOUT}) == len(HELDOUT)


def test_second_heldout_set_is_new_and_mixed_like_the_first() -> None:
    """The blind set (issue 29) shares no message with the other two and asks for each intent as often as the first
    held-out set does, so the two held-out figures measure the same mix."""
    seen = {normal(m["message"]) for m in DEV + HELDOUT}
    assert [m["id"] for m in HELDOUT2 if normal(m["message"]) in seen] == []
    assert len({normal(m["message"]) for m in HELDOUT2}) == len(HELDOUT2)
    assert Counter(m["intent"] for m in HELDOUT2) == Counter(m["intent"] for m in HELDOUT)


def test_training_messages_are_new() -> None:
    """The training set (issue 29) was written without seeing the planner or the blind set: none of its messages is
    a held-out message (tuning on it would leak the measure) or a dev message, and none repeats."""
    held_out, dev = {normal(m["message"]) for m in HELDOUT + HELDOUT2}, {normal(m["message"]) for m in DEV}
    assert [m["id"] for m in TRAIN if normal(m["message"]) in held_out] == []
    assert [m["id"] for m in TRAIN if normal(m["message"]) in dev] == []
    assert len({normal(m["message"]) for m in TRAIN}) == len(TRAIN)


def test_synthetic_listings_are_valid_and_deterministic() -> None:
    listings = synthetic.generate(1000)
    assert listings == synthetic.generate(1000)
    assert listings[:10] == synthetic.generate(10)
    assert listings != synthetic.generate(1000, seed=1)
    assert [entry["id"] for entry in listings] == [f"S{n:07d}" for n in range(1, 1001)]
    assert len({entry["agent_name"].lower() for entry in listings}) == 1000
    assert all(entry["kind"] == "listing" for entry in listings)
    problems = {entry["id"]: found for entry in listings if (found := entry_problems(entry))}
    assert problems == {}
    assert {entry["category"] for entry in listings} == set(synthetic.VOCABULARY)
    assert {entry["pricing"]["model"] for entry in listings} == PRICING_MODELS
