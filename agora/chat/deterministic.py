"""The deterministic planner: the reader's intent, carried out with the catalog's tools, answered with templates.

Which entry a message is about is settled with the tools too: a place in the last results, words that name a
listing or agent (a search for them, then the longest hit name said in the message), or "it" (the entry the
message's other words name, else the one the conversation is about). A start or details cue
whose words name nothing known was not one ("run a sentiment analysis on my reviews"): the message is a search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agora.core.ids import ID_RE
from agora_sdk.wire.chat import Intent, Understood
from agora_sdk.wire.search import Search

from . import phrasing
from .memory import Entry, Memory
from .naming import category_in, names_in
from .reading import Reading, searching
from .toolbox import AGENT, AGENT_STATS, CREATE_INSTANCE, LISTING, REGISTER, SEARCH, STATS, Toolbox

QUERY_CHARS = next(m.max_length for m in Search.model_fields["q"].metadata if getattr(m, "max_length", None))
NAME_CANDIDATES = 25  # hits read for a name said in the message
RESULTS = 10


@dataclass(frozen=True)
class Answer:
    response: str
    understood: Understood
    results: list[Entry] | None = None  # a new result list for the conversation ("the second one")
    focus: Entry | None = None  # the entry the answer was about ("it")


async def resolve(reading: Reading, memory: Memory, toolbox: Toolbox) -> Entry | None:
    """The entry the message is about, or None when it names nothing known."""
    reference = reading.reference
    if reference is None:
        return None
    if reference.position is not None:
        return memory.at(reference.position)
    if reference.pronoun and not reference.words.strip():
        return memory.about()
    words = reference.words.strip() or reading.text
    by_id = ID_RE.match(words)
    if by_id and by_id.group("prefix") in ("lst", "agent"):
        return Entry("listing" if by_id.group("prefix") == "lst" else "agent", words, words)
    kinds = ["listing"] if reading.intent is Intent.start_instance else ["listing", "agent"]
    for query in dict.fromkeys((words, reading.text)):  # the words first; the whole message if they named nothing
        found = await toolbox.call(SEARCH, {"q": query[:QUERY_CHARS], "kinds": kinds, "limit": NAME_CANDIDATES, "interpret": False})
        hits = (found.result or {}).get("results", [])
        named = names_in(words, [h["name"] for h in hits]) or names_in(reading.text, [h["name"] for h in hits])
        hit = next((h for h in hits if h["name"] == named), None)
        if hit is not None:
            return Entry(hit["kind"], hit["id"], hit["name"])
    return memory.about() if reference.pronoun else None  # "it", not named in the message's other words


class Deterministic:
    def __init__(self, toolbox: Toolbox, memory: Memory):
        self.toolbox = toolbox
        self.memory = memory

    async def answer(self, reading: Reading) -> Answer:
        target = None
        if reading.intent in (Intent.details, Intent.start_instance):
            target = await resolve(reading, self.memory, self.toolbox)
            if target is None and reading.tentative:
                reading = searching(reading.text)
        if reading.intent is Intent.search:
            return await self._search(reading)
        if reading.intent is Intent.stats:
            return await self._stats(reading)
        if reading.intent is Intent.details:
            return await self._details(reading, target)
        if reading.intent is Intent.start_instance:
            return await self._start(reading, target)
        if reading.intent is Intent.register_agent:
            return await self._register(reading)
        return Answer(phrasing.HELP, Understood(intent=Intent.help, params={}))

    async def _categories(self) -> list[str]:
        counts = await self.toolbox.call(STATS, {})
        return list((counts.result or {}).get("listings_by_category", {}))

    async def _search(self, reading: Reading) -> Answer:
        category = category_in(reading.text, await self._categories())
        params: dict[str, Any] = {"need": reading.need, **reading.wanted.params(), **({"category": category} if category else {})}
        found = await self.toolbox.call(SEARCH, search_arguments(reading, category))
        understood = Understood(intent=Intent.search, params=params)
        if found.result is None:
            return Answer(f"The search failed: {found.error}", understood)
        hits = found.result["results"]
        entries = [Entry(h["kind"], h["id"], h["name"]) for h in hits]
        return Answer(phrasing.search(reading.need, params, found.result), understood, results=entries)

    async def _stats(self, reading: Reading) -> Answer:
        category = category_in(reading.text, await self._categories())
        if category:
            counts = await self.toolbox.call(STATS, {"category": category})
            agents = None
        else:
            counts, agents = await self.toolbox.call(STATS, {}), await self.toolbox.call(AGENT_STATS, {})
        understood = Understood(intent=Intent.stats, params={"category": category} if category else {})
        if counts.result is None:
            return Answer(f"I could not count the marketplace: {counts.error}", understood)
        return Answer(phrasing.stats(counts.result, agents.result if agents else None), understood)

    async def _details(self, reading: Reading, target: Entry | None) -> Answer:
        understood = Understood(intent=Intent.details, params={"name": target.name if target else _words(reading)})
        if target is None:
            return Answer(_not_found(reading), understood)
        if target.kind == "listing":
            found = await self.toolbox.call(LISTING, {"listing": target.id})
            text = phrasing.listing(found.result) if found.result else f"I could not read listing {target.name}: {found.error}"
        else:
            found = await self.toolbox.call(AGENT, {"agent": target.id})
            text = phrasing.agent(found.result) if found.result else f"I could not read agent {target.name}: {found.error}"
        return Answer(text, understood, focus=target)

    async def _start(self, reading: Reading, target: Entry | None) -> Answer:
        understood = Understood(intent=Intent.start_instance, params={"name": target.name if target else _words(reading)})
        if target is None:
            return Answer(_not_found(reading, "listing"), understood)
        if target.kind != "listing":
            return Answer(f"{target.name} is a registered agent, not a marketplace listing: only listings can be started.", understood, focus=target)
        created = await self.toolbox.call(CREATE_INSTANCE, {"agent_id": target.id})
        if created.result is None:
            return Answer(f"I could not start an instance of {target.name}: {created.error}", understood, focus=target)
        return Answer(phrasing.started(target.name, created.result), understood, focus=target)

    async def _register(self, reading: Reading) -> Answer:
        new = reading.new_agent
        assert new is not None
        understood = Understood(intent=Intent.register_agent, params={"name": new.name, "capabilities": new.capabilities})
        if not new.name:
            return Answer("What should the new agent be called? Say, for example, “register an agent named MyBot that can do text analysis”.", understood)
        created = await self.toolbox.call(REGISTER, {"agent_name": new.name, "capabilities": new.capabilities})
        if created.result is None:
            return Answer(f"I could not register {new.name}: {created.error}", understood)
        agent = Entry("agent", created.result["agent_id"], created.result["agent_name"])
        return Answer(phrasing.registered(created.result), understood, focus=agent)


def search_arguments(reading: Reading, category: str | None) -> dict[str, Any]:
    """``agora.marketplace.search``'s input for a search reading: the need as the words, the filters read from the
    message as filters (read once, here: the search does not read them again)."""
    wanted = reading.wanted
    args: dict[str, Any] = {"q": reading.need[:QUERY_CHARS], "kinds": ["listing", "agent"], "limit": RESULTS, "interpret": False}
    if category:
        args["category"] = category
    if wanted.max_price is not None:
        args["max_price"] = str(wanted.max_price)
    if wanted.pricing_model:  # hybrid is priced per request (plus a base fee), as the search reads "per request"
        args["pricing_models"] = [wanted.pricing_model, "hybrid"] if wanted.pricing_model == "per_request" else [wanted.pricing_model]
    if wanted.region:
        args["region"] = wanted.region if "-" in wanted.region else wanted.region + "-"
    if wanted.language:
        args["languages"] = [wanted.language]
    if wanted.min_success_rate is not None:
        args["min_success_rate"] = wanted.min_success_rate
    if wanted.min_rating is not None:
        args["min_rating"] = wanted.min_rating
    if wanted.sort:
        args["sort"] = wanted.sort
    return args


def _words(reading: Reading) -> str:
    reference = reading.reference
    return reference.words if reference and reference.words else ""


def _not_found(reading: Reading, kind: str = "listing or agent") -> str:
    reference = reading.reference
    if reference is not None and (reference.position is not None or reference.pronoun):
        return "Which one do you mean? This conversation has no such earlier result: ask me to find something first."
    return f"I found no {kind} named “{_words(reading)}”. Ask me to find one by what it does."
