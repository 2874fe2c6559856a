"""What a person's query asks for: the words to match, and the constraints said in words.

"an agent that translates legal documents from French, under a cent a request" becomes the words ``translat legal
document`` (stemmed as the engine stems), a price ceiling of 0.01 per request, and French as the language. The
chat's deterministic planner reads the same constraints (``Constraints``), so search and chat agree on what a
sentence means. Words the index has never seen are corrected to the nearest indexed term ("transalte" → translat).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache

import snowballstemmer
from rapidfuzz.distance import OSA

LANGUAGES = {
    "english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it", "portuguese": "pt",
    "dutch": "nl", "swedish": "sv", "norwegian": "no", "danish": "da", "finnish": "fi", "polish": "pl", "czech": "cs",
    "russian": "ru", "ukrainian": "uk", "turkish": "tr", "greek": "el", "arabic": "ar", "hebrew": "he", "hindi": "hi",
    "bengali": "bn", "urdu": "ur", "chinese": "zh", "mandarin": "zh", "cantonese": "zh", "japanese": "ja",
    "korean": "ko", "vietnamese": "vi", "thai": "th", "indonesian": "id", "malay": "ms", "swahili": "sw",
    "romanian": "ro", "hungarian": "hu", "persian": "fa", "farsi": "fa", "tagalog": "tl", "catalan": "ca",
}  # fmt: skip
REGIONS = {
    "europe": "eu-", "european": "eu-", "eu": "eu-", "emea": "eu-", "germany": "eu-central", "frankfurt": "eu-central",
    "ireland": "eu-west", "us": "us-", "usa": "us-", "america": "us-", "american": "us-", "states": "us-",
    "asia": "ap-", "apac": "ap-", "japan": "ap-northeast", "tokyo": "ap-northeast", "india": "ap-south",
    "mumbai": "ap-south", "singapore": "ap-southeast", "australia": "ap-southeast",
}  # fmt: skip
# Words that say nothing about what is wanted (function words, and the marketplace's own vocabulary).
STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from into onto about as is are was were be been being it its
    this that these those there here which who whom whose what when where why how i me my we our you your he she they
    them their do does did doing done can could should would will shall may might must need needs needed want wants
    wanted wanting looking look find finding search searching show give get got please some something someone any
    anything one ones thing things stuff kind sort type agent agents bot bots tool tools service services app apps
    marketplace hub available able also just very really than then so not no yes up down out over under below above
    less more most least only own per via using use uses used like such much many cheap cheaper cheapest price priced
    pricing cost costs costing money budget request requests call calls hour hourly minute minutes""".split()
)
_WORD = re.compile(r"[^\W_]+")  # letters and digits of any script ("übersetzung", "français"), as the indexes split words
_AMOUNT = r"(?:(?:\$|usd\s*|€|eur\s*)?(?P<num>\d+(?:[.,]\d+)?)(?![.,]?\d|\s*(?:%|percent))\s*(?P<currency>\$|usd|dollars?|bucks?|eur|euros?|€|cents?|¢|c\b)?|(?P<word>a cent|one cent|a penny|half a cent|a tenth of a cent|a dollar|one dollar|a buck|a euro))"
_UNIT = r"(?P<unit>request|req|call|query|task|job|message|hour|hr|minute|min)s?\b"
_CEILING = re.compile(
    r"\b(?:under|below|less than|cheaper than|at most|no more than|not more than|max(?:imum)?(?: of)?|up to|within|<=?)\s*"
    + _AMOUNT + r"(?:\s*(?:a|an|per|each|every|/)\s*" + _UNIT + ")?",
    re.IGNORECASE,
)
_FREE = re.compile(r"\b(?:free|no cost|zero cost|costs nothing|gratis)\b", re.IGNORECASE)
# Pricing by unit said on its own ("per request", "billed by the hour", "hourly"); "a request" only after a price.
_PER = re.compile(r"(?:\bper\s*|/\s*|\bby the\s+)" + _UNIT + r"|\b(?P<adverb>hourly)\b", re.IGNORECASE)
_NEGATED = re.compile(r"\b(?:not|no|never|rather than|instead of)\s*$", re.IGNORECASE)  # said just before a unit
_SUCCESS = re.compile(
    r"(?:at least|no less than|not less than|over|above|more than|>=?|min(?:imum)?)\s*(\d{1,3}(?:\.\d+)?)\s*%(?:\s*(?:success\w*|reliab\w*|uptime)(?:\s+rates?)?\b)?",
    re.IGNORECASE,
)
# A region named as the clouds name them ("eu-central", "us-east-1"): that region, not the continent.
# "best rated", "top-rated", "highest rated": best rated first; "most reputable", "best reputation": best reputed first.
_BEST = re.compile(r"\b(?:(?:best|top|highest)[- ]rated|(?:most reputable|best reputation|highest reputation))\b", re.IGNORECASE)
# "rated 4+", "at least 4 stars", "4 stars or more", "4.5+ stars": a rating floor.
_STARS = re.compile(
    r"\b(?:rated\s+(?:at least\s+)?(?P<a>[1-5](?:\.\d)?)\s*\+?(?:\s*stars?)?|(?:at least|min(?:imum)?)\s+(?P<b>[1-5](?:\.\d)?)\s*stars?"
    r"|(?P<c>[1-5](?:\.\d)?)\s*(?:\+\s*stars?|stars?\s*(?:\+|or (?:more|better|above)|and (?:up|above))))",
    re.IGNORECASE,
)
_REGION_CODE = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af)-(?:north|south|east|west|central|northeast|northwest|southeast|southwest)\b(?:-\d)?", re.IGNORECASE)
_WORDS_AMOUNTS = {
    "a cent": "0.01", "one cent": "0.01", "a penny": "0.01", "half a cent": "0.005", "a tenth of a cent": "0.001",
    "a dollar": "1", "one dollar": "1", "a buck": "1", "a euro": "1",
}  # fmt: skip
_MODEL_OF_UNIT = {
    "request": "per_request", "req": "per_request", "call": "per_request", "query": "per_request", "task": "per_request",
    "job": "per_request", "message": "per_request", "hour": "per_hour", "hr": "per_hour", "minute": "per_minute",
    "min": "per_minute",
}  # fmt: skip
# British spellings and their American twins (either may be in the index): the query asks for both.
_SPELLINGS = ((re.compile(r"is(e|ed|es|ing|ation|ations|er|ers)$"), r"iz\1"), (re.compile(r"our$"), "or"),
              (re.compile(r"yse(d|s)?$"), r"yze\1"), (re.compile(r"tre$"), "ter"), (re.compile(r"ogue$"), "og"))  # fmt: skip


@dataclass
class Constraints:
    """What a query said besides its words: a price ceiling, pricing models, regions, languages, a success rate, a
    rating floor and an order."""

    max_price: Decimal | None = None
    pricing_models: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)  # a region or a prefix ending in '-'
    languages: list[str] = field(default_factory=list)
    min_success_rate: float | None = None
    min_rating: float | None = None
    sort: str | None = None  # rating or reputation: best first
    understood: list[str] = field(default_factory=list)  # the phrases read as constraints, as said


@dataclass
class ParsedQuery:
    text: str  # the query without the phrases read as constraints
    words: list[str]  # content words, lowercase, in order
    constraints: Constraints


def parse(query: str) -> ParsedQuery:
    """Split ``query`` into its constraints and the words left to match."""
    constraints = Constraints()
    rest = query
    for match in _CEILING.finditer(query):
        amount = _amount(match)
        if amount is not None:
            constraints.max_price = amount if constraints.max_price is None else min(constraints.max_price, amount)
            constraints.understood.append(match.group(0).strip())
            rest = rest.replace(match.group(0), " ")
            if match.group("unit"):
                _add_models(constraints, match.group("unit"))
    if constraints.max_price is None and (free := _FREE.search(query)):
        constraints.max_price = Decimal(0)
        constraints.understood.append(free.group(0))
        rest = rest.replace(free.group(0), " ")
    said = rest
    for match in _PER.finditer(said):
        if not _NEGATED.search(said, 0, match.start()):  # "billed per hour, not per request": per hour only
            _add_models(constraints, match.group("unit") or "hour")
            constraints.understood.append(match.group(0).strip())
        rest = rest.replace(match.group(0), " ")
    if success := _SUCCESS.search(rest):
        constraints.min_success_rate = min(1.0, round(float(success.group(1)) / 100, 6))
        constraints.understood.append(success.group(0).strip())
        rest = rest.replace(success.group(0), " ")
    if best := _BEST.search(rest):
        constraints.sort = "reputation" if "reput" in best.group(0).lower() else "rating"
        constraints.understood.append(best.group(0))
        rest = rest.replace(best.group(0), " ")
    if stars := _STARS.search(rest):
        constraints.min_rating = float(stars.group("a") or stars.group("b") or stars.group("c"))
        constraints.understood.append(stars.group(0).strip())
        rest = rest.replace(stars.group(0), " ")
    for match in _REGION_CODE.finditer(rest):
        code = re.sub(r"-\d$", "", match.group(0).lower())
        if code not in constraints.regions:
            constraints.regions.append(code)
            constraints.understood.append(match.group(0))
        rest = rest.replace(match.group(0), " ")
    words = _WORD.findall(rest.lower())
    for word in words:
        if word in LANGUAGES and LANGUAGES[word] not in constraints.languages:
            constraints.languages.append(LANGUAGES[word])
            constraints.understood.append(word)
    lowered = f" {rest.lower()} "
    for word, region in REGIONS.items():
        if re.search(rf"\b(?:in|from|within|based in|hosted in|inside)\s+(?:the\s+)?{word}\b|\b{word}[- ](?:based|hosted|region)\b", lowered):
            if region not in constraints.regions:
                constraints.regions.append(region)
                constraints.understood.append(word)
    content = [w for w in words if w not in STOPWORDS and not w.isdigit()]
    return ParsedQuery(" ".join(rest.split()), content, constraints)


def plain(query: str) -> ParsedQuery:
    """``query`` as words only: nothing read as a constraint."""
    return ParsedQuery(" ".join(query.split()), [w for w in _WORD.findall(query.lower()) if w not in STOPWORDS], Constraints())


def _add_models(constraints: Constraints, unit: str) -> None:
    model = _MODEL_OF_UNIT[unit.lower()]
    models = [model, "hybrid"] if model == "per_request" else [model]  # hybrid is priced per request (plus a base fee)
    constraints.pricing_models += [m for m in models if m not in constraints.pricing_models]


def _amount(match: re.Match[str]) -> Decimal | None:
    if match.group("word"):
        return Decimal(_WORDS_AMOUNTS[match.group("word").lower()])
    number = match.group("num")
    if number is None:
        return None
    value = Decimal(number.replace(",", "."))
    unit = (match.group("currency") or "").lower()
    return value / 100 if unit in ("cent", "cents", "¢", "c") else value


@lru_cache(maxsize=2)
def _stemmer(engine: str) -> snowballstemmer.stemmer:
    """The stemmer of the engine's index: FTS5's porter tokenizer on SQLite, the snowball 'english' of PostgreSQL's
    text search configuration."""
    return snowballstemmer.stemmer("english" if engine == "postgresql" else "porter")


def variants(word: str) -> list[str]:
    """The word and its other spelling (British ↔ American), when it has one."""
    found = [word]
    for pattern, replacement in _SPELLINGS:
        other = pattern.sub(replacement, word)
        if other != word:
            found.append(other)
    return found


def _folded(word: str, engine: str) -> str:
    """The word as the engine's index holds it before stemming: FTS5 (``remove_diacritics``) takes the accents off
    Latin letters ("français" is francais); PostgreSQL's 'english' configuration keeps them."""
    if engine == "postgresql" or word.isascii():
        return word
    return "".join(d[0] if (d := unicodedata.normalize("NFD", c))[0].isascii() else c for c in word)


def stems(words: list[str], engine: str) -> list[str]:
    stem = _stemmer(engine).stemWord
    return list(dict.fromkeys(stem(_folded(v, engine)) for w in words for v in variants(w)))


# A term in more than this share of the documents says little of what is relevant (BM25 gives it a low weight), and
# matching it means ranking a large part of the index: "team", in half of 100,000 listings, was 60 ms of a 100 ms search.
COMMON_SHARE = 0.1


class Vocabulary:
    """The index's terms (stems) with their document counts, for correcting words the index has never seen and for
    leaving out the common ones (``selective``); ``documents``: how many documents the counts are of."""

    def __init__(self, terms: dict[str, int], documents: int = 0):
        self.terms = terms
        self.documents = documents
        self._by_start: dict[str, list[str]] = {}
        for term in terms:
            if term.isalpha() and len(term) >= 3:
                self._by_start.setdefault(term[0], []).append(term)

    def __len__(self) -> int:
        return len(self.terms)

    def selective(self, stems: list[str]) -> list[str]:
        """The stems to match documents on: those of more than ``COMMON_SHARE`` of the documents are left out while a
        rarer one remains (they still mark the words they match in the results)."""
        rare = [stem for stem in stems if self.terms.get(stem, 0) <= COMMON_SHARE * self.documents]
        return (rare or stems) if self.documents else stems

    def correct(self, stem: str) -> str | None:
        """The nearest indexed term to an unknown ``stem`` (one edit below eight letters, two from eight: two edits
        take a shorter word to other words, "sweater" to speaker; a swap of two letters is one edit), the more common
        on a tie; None when none is near enough or the stem is known."""
        if stem in self.terms or len(stem) < 4 or not stem.isalpha():
            return None
        allowed = 1 if len(stem) < 8 else 2
        best: tuple[int, bool, int, str] | None = None
        for first in {stem[0], *(stem[1:2] if allowed > 1 else "")}:
            for term in self._by_start.get(first, ()):
                if abs(len(term) - len(stem)) > allowed:
                    continue
                distance = OSA.distance(stem, term, score_cutoff=allowed)
                if distance <= allowed:
                    swapped = sorted(stem) == sorted(term)  # letters swapped: the commonest slip, preferred on a tie
                    candidate = (distance, not swapped, -self.terms[term], term)
                    best = candidate if best is None or candidate < best else best
        return best[3] if best else None


@dataclass
class MatchTerms:
    """What the engine is asked to match: known stems, corrections of unknown ones, and how words were corrected."""

    stems: list[str]
    corrections: dict[str, str]  # word as typed → the indexed term used instead
    unknown: bool = False  # a word neither in the vocabulary nor near a word in it


def match_terms(words: list[str], engine: str, vocabulary: Vocabulary | None) -> MatchTerms:
    found: list[str] = []
    corrections: dict[str, str] = {}
    unknown = False
    for word in words:
        for stem in stems([word], engine):
            fixed = vocabulary.correct(stem) if vocabulary is not None and len(vocabulary) else None
            if fixed is not None:
                corrections[word] = fixed
            unknown = unknown or (vocabulary is not None and fixed is None and stem not in vocabulary.terms)
            found.append(fixed or stem)
    return MatchTerms(list(dict.fromkeys(found)), corrections, unknown)
