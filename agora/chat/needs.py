"""What a search wants: the filters a message states — read through ``agora.search.query.parse``, so search and
chat read a constraint the same way, and beyond it: success rates said every way (``success.py``), places for
regions (``places.py``), languages asked for as filters — and the need left when they, the asking and the asides
are gone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from agora.search.query import LANGUAGES, STOPWORDS, parse

from .foreign import LANGUAGE_NAMES, NOISE
from .places import NEAR, region_in
from .success import PERCENT_LEFT, SUCCESS_WORDS, as_floors
from .wording import LEAD, START_VERBS, clauses


@dataclass(frozen=True)
class Wanted:
    """The filters a message states (each absent unless stated)."""

    max_price: Decimal | None = None
    pricing_model: str | None = None  # per_request, per_minute, per_hour, hybrid
    region: str | None = None  # a region ("eu-central"), or a continent ("eu": every region starting with it)
    language: str | None = None  # ISO 639-1; of a pair with English, the other one
    min_success_rate: float | None = None
    min_rating: float | None = None
    sort: str | None = None  # rating or reputation: best first

    def params(self) -> dict[str, object]:
        found = {"max_price": str(self.max_price) if self.max_price is not None else None, "pricing_model": self.pricing_model,
                 "region": self.region, "language": self.language, "min_success_rate": self.min_success_rate,
                 "min_rating": self.min_rating, "sort": self.sort}  # fmt: skip
        return {k: v for k, v in found.items() if v is not None}


_COMMAND = re.compile(
    rf"^{LEAD}(?:(?:find|search|show|list|look|looking|lookin|recommend|suggest|get|give|fetch|locate|need|want|seek|seeking|"
    r"browse|display|gimme|searching|hunting|shopping|in\s+search\s+of|"
    r"(?:i(?:'m|\s+am)|we(?:'re|\s+are))\s+(?:looking|searching|after|hunting|on\s+the\s+lookout|in\s+the\s+market|trying\s+to\s+find)|"
    r"(?:i|we)\s+(?:really\s+|just\s+|also\s+|still\s+|urgently\s+)?(?:need|want|require)|(?:i|we)(?:'d|\s+would)\s+(?:like|love)|(?:do\s+you\s+)?know\s+(?:of\s+)?|"
    r"(?:can|could)\s+(?:someone|somebody|anyone|anybody)\s+(?:point\s+(?:me|us)\s+to|recommend|suggest|help\s+(?:me|us)\s+find)|"
    r"(?:any\s+)?(?:recommendations?|suggestions?|ideas|advice|tips)\s+(?:for|on)|"
    r"is\s+there|are\s+there|do\s+you\s+have|have\s+you\s+got|got|know(?:\s+of)?|heard\s+of|any(?:one|body|thing)?|anything|"
    r"tell\s+me\s+(?:more\s+)?about|what\s+do\s+you\s+know\s+about|(?:more\s+)?(?:info(?:rmation)?|details?)\s+(?:on|about|for|of)|describe|"
    rf"where\s+can\s+i\s+(?:get|find)|(?:by\s+)?any\s+chance(?:\s+there\s+is)?|who(?:'s|\s+is)?|which|what(?:'s|\s+is)?(?:\s+out\s+there)?|{START_VERBS})\b[\s,:]*"
    r"(?:(?:for|me|us|up|out|on|at|around|some|someone|something|a|an|the|to)\b[\s,:]*)*)+",
    re.IGNORECASE,
)
# Words of a chat message that say nothing about the need: slang, marketplace vocabulary, the asking itself.
_NOISE = frozenset(
    """pls plz sumthing somethin smth sth u ur ya gimme wanna gonna gotta kinda sorta lol thx thanks thank hey hi yo
    listing listings offering offerings option options solution solutions list recommend suggest locate fetch
    browse seek seeking im i'm ive i've i'd dont don't whats what's theres there's exists exist out good ai
    great best decent nice solid awesome cool recommended popular affordable inexpensive dirt lowcost chance way strong
    proven flat everything cheaply""".split()
)
_PRICING_WORDS = re.compile(
    r"\b(?:hybrid[\s-]*pric(?:ed|ing)|hybrid(?:\s+(?:model|pricing|billing))?|(?:that\s+(?:is|are)\s+)?(?:billed|billing|charged|charging|charges|charge|priced|paid|pay|paying|spend|costing|costs?|pricing|rate|rates)\b(?:\s+(?:by|at|per|on|a|an)\b)*)",
    re.IGNORECASE,
)
_LANGUAGE_NAMES = "|".join(sorted(LANGUAGES, key=len, reverse=True))
_FOREIGN_LANGUAGE_NAMES = "|".join(sorted(LANGUAGE_NAMES, key=len, reverse=True))
# A language as a filter ("in French", "that speaks Japanese", ", english" at the end), not as a word of the need
# ("hindi translation", "french to english translator").
_A_LANGUAGE = f"(?:{_LANGUAGE_NAMES}|{_FOREIGN_LANGUAGE_NAMES})"
_LANGUAGE_FILTER = re.compile(
    rf"(?:\b(?:that|which|who)\s+)?\b(?:(?:works?|working|fluent)\s+in|in|en|from|into|speaks?|speaking|talks?|talking|understands?|supports?|supporting|handles?|for|between)\s+(?:the\s+)?{_A_LANGUAGE}"
    rf"(?:\s*(?:to|into|and|-|->|→)\s*{_A_LANGUAGE})?\b(?:\s+(?:language|speakers?|text|content))?"
    rf"|\b(?:{_LANGUAGE_NAMES})[\s-]+speaking\b"
    rf"|,\s*(?:{_LANGUAGE_NAMES})\s*[?.!]*$",
    re.IGNORECASE,
)
_POLISH = re.compile(r"\bPolish\b|\bpolish\s+(?:to|into|translation|translator|speakers?|language)\b|\b(?:in|from|into)\s+polish\b")
_HYBRID = re.compile(r"\bhybrid\b", re.IGNORECASE)
_TRAILING = re.compile(r"(?:\s+(?:for|to|in|on|at|is|are|hosted|based|located|with|please|pls|plz|thanks|thank\s+you|asap|now|today|that|which|who|and|or|of))+\s*$", re.IGNORECASE)


def need_and_filters(text: str) -> tuple[str, Wanted]:
    parsed = parse(as_floors(text))
    c = parsed.constraints
    rest = parsed.text
    region, rest = region_in(rest, _asides(text))
    rest = " ".join(rest.split())
    if region is None:  # a region code the search's reader took out of the text ("in eu-central")
        region = next((r for r in c.regions if not r.endswith("-")), None)
    language, rest = _language(text, rest, c.languages)
    model = c.pricing_models[0] if c.pricing_models else ("hybrid" if _HYBRID.search(text) else None)
    for pattern in (_PRICING_WORDS, SUCCESS_WORDS, PERCENT_LEFT, _LANGUAGE_FILTER):
        rest = " ".join(pattern.sub(" ", rest).split())  # no runs of spaces: patterns are tried at each space
    success = round(c.min_success_rate, 6) if c.min_success_rate is not None else None  # 99.9 / 100 is 0.9990000000000001
    wanted = Wanted(
        max_price=c.max_price, pricing_model=model, region=region, language=language, min_success_rate=success,
        min_rating=c.min_rating, sort=c.sort,
    )  # fmt: skip
    return _need(rest), wanted


# Wondering aloud: "I wonder if anyone makes …", "does anybody offer …".
_WONDER = re.compile(
    r"^(?:i|we)\s+wish\s+(?:there\s+(?:was|were|is)|(?:i|we)\s+(?:had|could\s+(?:find|get)))\s+"
    r"|^(?:it\s+)?would\s+be\s+(?:great|nice|cool|awesome|good|helpful|useful|ideal)\s+(?:to\s+(?:have|get|find)|if\s+(?:there\s+(?:was|were)|(?:i|we)\s+(?:had|could\s+(?:find|get))))\s+"
    r"|^how\s+(?:do|can|could|would)\s+(?:i|we)\s+(?:get|find)\s+|^is\s+it\s+possible\s+to\s+(?:get|find|have)\s+"
    r"|^(?:i\s+)?(?:wonder(?:ing)?|curious)\s+(?:if|whether)\s+|^(?:does|do)\s+(?=(?:anyone|anybody|someone|somebody)\b)|\b(?:anyone|anybody|someone|somebody)\s+(?:makes?|offers?|has|sells?|provides?|builds?|does|do)\s+", re.IGNORECASE)
# Who has it: "the cheapest OCR you have", "… you guys offer".
_YOU_HAVE = re.compile(r"\b(?:you|u|y'?all|you\s+guys|the\s+hub|the\s+marketplace)\s+(?:have|has|got|offer|list|carry|sell|know\s+of)\b", re.IGNORECASE)
# A condition after the need: "…, as long as it runs in Frankfurt", "… ideally hosted close to us".
_QUALIFIER = re.compile(r"\s+(?:as\s+long\s+as|so\s+long\s+as|ideally|preferably|provided(?:\s+that)?|if\s+possible|but|though|although)\b.*$", re.IGNORECASE)
_ADVERBS = r"(?:(?:hey|hi|hello|ok|okay|so|well|also|and|but|btw|honestly|frankly|basically|unfortunately|sadly)\b[\s,]*)*"
# An aside: a pleasantry, or the user telling of themselves ("we have 10k receipts a month", "our last vendor failed").
_ASIDE = re.compile(
    rf"^{_ADVERBS}(?:hope\b|thanks?\b|thank\s+you|cheers\b|have\s+a\s+\w+\s+(?:day|one)\b"
    r"|good\s+(?:morning|afternoon|evening)\b|(?:i|we)(?:'m|'re|'ve|\s+am|\s+are|\s+was|\s+were|\s+have|\s+had|\s+run|\s+use|\s+used|\s+built"
    r"|\s+work|\s+got|\s+just|\s+currently|\s+already|\s+tried|\s+own|\s+sell|\s+make)\b|(?:my|our)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:is|are|was|were|has|have|had|keeps?|kept|failed|fails|uses?|used|broke|sucks|costs?)\b"
    r"|(?:the|my|our)\s+(?:current|existing|old|present|usual)\b|the\s+(?:[\w-]+\s+){0,3}?(?:i|we)\s+(?:tried|use|used|have|had|got|bought)\b"
    # what does not matter to the user: "cost doesn't matter", "price is no object"
    r"|(?:[\w-]+\s+)?(?:does|do)\s+not\s+matter\b|(?:[\w-]+\s+)?(?:is|are)\s+(?:not|no)\s+(?:an?\s+)?(?:issue|problem|object|concern)\b)",
    re.IGNORECASE,
)
# What the user has now, in a complaint: "our current translator is painfully slow", "the transcription tool we use
# keeps choking on Hindi audio".
_CURRENT = re.compile(
    rf"^{_ADVERBS}(?:my|our|the)\s+(?:(?:current|existing|old|present|usual)\s+)?(?P<thing>(?:[\w-]+\s+){{0,2}}?[\w-]+)\s+"
    r"(?:(?:i|we)\s+(?:use|used|have|had|tried|got|bought)\s+)?(?:is|are|was|were|keeps?|kept|does|did|doesn't|can't|cannot|sucks|fails?|failed"
    r"|broke|chokes?|struggles?|misses?|takes?)\b",
    re.IGNORECASE,
)
# What asks for another of the same kind, better in some way: "anything faster?", "something that does it better".
_VAGUE = frozenset("better faster cheaper quicker else different alternative alternatives replacement other improved superior accurate".split())
# A clause that asks, whoever its subject: "… and need dictation", "we're after …".
_ASKS = re.compile(r"\b(?:need|needs|want|wants|require|requires|looking\s+for|after\s+(?:a|an|some)|love\s+(?:a|an|some))\b", re.IGNORECASE)
# Who needs it, before what: "our support team needs a …", "my lawyers want …".
_SUBJECT_NEEDS = re.compile(
    r"^(?:my|our|the)\s+(?:[\w-]+\s+){0,3}?(?:needs?|wants?|requires?|could\s+use|(?:is|are)\s+looking\s+for)\s+"
    r"|^(?:i|we)\s+(?:am|are)\s+(?:[\w-]+\s+){1,5}?(?:looking|searching|hunting)\s+for\s+",
    re.IGNORECASE,
)


def _need(rest: str) -> str:
    """The need: the message's clauses that still say something once the constraints are out, each without the
    asking ("hey, is there anything that …, budget is like …" → the middle clause), and without the asides around
    a request ("we're a law firm in Dublin", "hope you're well") when a clause asks for something. A request for a
    better one of what a complaint names ("our current translator is slow. anything faster?") wants that thing."""
    parts = []  # (need, clause, aside)
    for clause in clauses(_QUALIFIER.sub("", rest)):
        need = _tidy(_SUBJECT_NEEDS.sub("", _tidy(clause)))
        if content_words(need):
            parts.append((need, clause, _aside(clause)))
    asked = [need for need, _, aside in parts if not aside]
    if not asked:
        return ", ".join(need for need, _, _ in parts)
    wanted = [word for need in asked for word in content_words(need)]
    current = next((m.group("thing") for _, clause, aside in parts if aside and (m := _CURRENT.match(clause))), None)
    if current and all(w in _VAGUE or w in LANGUAGES or w in LANGUAGE_NAMES for w in wanted):
        return " ".join([*wanted, current])
    return ", ".join(asked)


def _aside(clause: str) -> bool:
    """Whether ``clause`` is an aside: it tells of the user, or is a pleasantry, and asks for nothing."""
    return bool(_ASIDE.match(clause)) and not _COMMAND.match(clause) and not _ASKS.search(clause)


def _asides(text: str) -> list[str]:
    """The asides of ``text`` (lowercase) when it does not ask for something near the user: a place said there is
    where the user is ("we're a law firm in Dublin"), not where the service must run."""
    return [] if NEAR.search(text) else [clause.lower() for clause in clauses(text) if _aside(clause)]


def _language(text: str, rest: str, languages: list[str]) -> tuple[str | None, str]:
    """The language the service must handle: of a pair with English, the other one. 'polish' counts only as the
    language ('Polish', 'polish to …'), not as the verb."""
    english = [code for code in languages if code != "pl" or _POLISH.search(text)]
    said = list(dict.fromkeys([*english, *(LANGUAGE_NAMES[w] for w in re.findall(r"\w+", text.lower()) if w in LANGUAGE_NAMES)]))
    if not said:
        return None, rest
    others = [code for code in said if code != "en"]
    return (others[0] if others else "en"), rest


def _tidy(rest: str) -> str:
    """The need as words: the asking taken off the front, noise words out, stray punctuation and joining words
    off the ends."""
    need = re.sub(rf"^{LEAD}", "", re.sub(r"^[^\w'\"(]+", "", rest.strip()), flags=re.IGNORECASE)
    need = _COMMAND.sub("", _WONDER.sub(" ", need).strip(" ,.;:!?")).strip()
    need = _YOU_HAVE.sub(" ", need)
    words = [w for w in re.split(r"\s+", need) if w and w.lower().strip(",.;:!?¿¡") not in _NOISE | NOISE]
    need = " ".join(words)
    need = re.sub(r"\s+([,.;:!?])", r"\1", need)
    previous = None
    while previous != need:
        previous = need
        need = _TRAILING.sub("", need.strip(" ,.;:!?-")).strip()
        need = re.sub(r"^(?:(?:a|an|the|some|any|that|which|who|to|for|and|or|with|of|me|un|une|des|ein|eine|einen|einem|einer)\s+)+", "", need, flags=re.IGNORECASE)
    return need


def content_words(text: str) -> list[str]:
    """The words of ``text`` that say something (no function word, no chat noise)."""
    return [w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOPWORDS and w not in _NOISE]
