"""The deterministic reader: what a chat message asks for, from its words alone.

A message is one of five intents (seed 001's tools): find agents by need (``search``), the ``details`` of one,
marketplace ``stats``, ``start_instance`` of a listing, ``register_agent``; ``help`` when it says none. The reader
also reads which entry the message is about (words that may name it, a place in the last results, or "it"), a new
agent's name and capabilities (``registration.py``), and for a search its filters and need (``needs.py``). A
request may open any clause of a message, not only its first ("we decided on MedScribe, go ahead and launch it");
messages in Spanish, French and German are read through their cue words in English (``foreign.py``).

Nothing here looks at a tool's output: which write a message asks for is decided from the user's own words, so a
listing's description can never talk the chat into one (``guard.py``). Whether words name a real entry, and whether
a word is a category, the planner settles with the catalog's tools (``naming.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agora_sdk.wire.chat import Intent

from .needs import Wanted, content_words, need_and_filters
from .registration import NewAgent, registration
from .wording import LEAD, START_VERBS, clauses, normalize


WRITE_INTENTS = frozenset({Intent.start_instance, Intent.register_agent})


@dataclass(frozen=True)
class Reference:
    """Which entry a message is about: words that may name it, a place in the last results, or "it" (named by the
    words, if they name something, else the one the conversation is about)."""

    words: str = ""
    position: int | None = None  # 0-based; -1 is the last
    pronoun: bool = False


@dataclass(frozen=True)
class Reading:
    intent: Intent
    text: str  # the message, normalised (wording.normalize)
    need: str = ""
    wanted: Wanted = field(default_factory=Wanted)
    reference: Reference | None = None
    new_agent: NewAgent | None = None
    # A details or start cue whose object may be a name or a description ("run a sentiment analysis"): it stands
    # only if the words name a known entry, else the message is a search.
    tentative: bool = False


_START = re.compile(
    rf"^{LEAD}(?P<verb>{START_VERBS}|use)\b(?P<object>.*)$"
    rf"|^{LEAD}(?:get|have|set)\s+(?P<running>.+?)\s+(?:running|going|started|deployed|up\s+and\s+running|spun\s+up)\b(?!\s+(?:copy|instance|version|deployment)\b)"
    r"|\bset\s+(?P<setup>it|this|that|this\s+one|that\s+one)\s+up\b",
    re.IGNORECASE | re.MULTILINE,
)
_WEAK_START = re.compile(rf"^{LEAD}(?:create|get|give|make|set\s*up|open|add|order|have)\b(?P<object>.*)$", re.IGNORECASE | re.MULTILINE)
_INSTANCE = re.compile(r"\binstances?\b", re.IGNORECASE)
# "I want my own running X", "a dedicated copy of X": an instance, said without the word.
_OWN_COPY = re.compile(r"\b(?:my|our)\s+own\s+(?:running\s+|private\s+|dedicated\s+)?(?:(?:copy|instance|deployment|version)\s+of\s+)?(?P<object>.+)$|\ba\s+(?:private|dedicated)\s+(?:running\s+)?(?:copy|instance|deployment)\s+of\s+(?P<dedicated>.+)$", re.IGNORECASE)
_INSTANCE_OF = re.compile(r"\b(?:an?|one|new|another|1)\s+(?:new\s+|running\s+|fresh\s+)?(?:instance|copy|deployment)\s+(?:of|for)\b|\binstance\s+of\b", re.IGNORECASE)
_STATS = re.compile(
    r"\bhow\s+many\b|\bnumber\s+of\b|\bcount\s+(?:of|the)\b|^count\b|\bstatistic|\bstats\b|\bbreak\s*down\b"
    r"|\boverview\b(?!\s+(?:of|on|for)\s+(?!(?:the\s+|your\s+)?(?:marketplace|catalog|catalogue|hub|market)\b))"
    r"|\bhow\s+(?:big|large)\b|\btotal\s+(?:number|count)\b|\bsize\s+of\b|\bhow\s+much\s+is\s+(?:there|listed)\b"
    r"|\b(?:numbers|figures|metrics|totals|counts)\s+(?:about|on|for|of|from)\s+(?:the\s+|your\s+)?(?:marketplace|catalog|catalogue|hub|market)\b"
    r"|\bnumbers[\s-]*wise\b|\bin\s+numbers\b|\bby\s+the\s+numbers\b|\b(?:the|some|your)\s+numbers\b|\bnumbers\s+(?:per|by)\b"
    r"|\b(?:a|the)\s+count\b|\bcount\s+for\b|\b(?:catalog|catalogue|marketplace|market|hub)\s+size\b|\bhow\s+(?:populated|crowded|full|stocked)\b"
    r"|\b(?:listings?|agents?|offerings?|entries)\s+(?:per|by)\s+category\b|\bper\s+category\b|\btotal\s+(?:listings|agents|offerings|entries)\b"
    r"|\b(?:spread|distribution|split|mix|share|percentage|proportion|fraction)\s+of\s+(?:the\s+)?(?:listings|agents|offerings|entries|marketplace|catalog|catalogue)\b"
    r"|\bhow\s+many\s+(?:options|choices|listings|agents)\b"
    # comparisons across the catalog: "which category has the most listings", "the split between hourly and per-request"
    r"|\b(?:which|what)\s+(?:categor(?:y|ies)|regions?|pricing\s+models?)\s+(?:has|have|is|are)\s+the\s+(?:most|fewest|least|biggest|largest|smallest|highest|lowest)\b"
    r"|\b(?:most|least)\s+(?:popular|common|crowded)\s+(?:categor(?:y|ies)|regions?|pricing\s+models?)\b"
    r"|\b(?:top|biggest|largest|smallest)\s+(?:categor(?:y|ies)|regions?)\b|\b(?:by|per)\s+(?:categor(?:y|ies)|regions?|pricing\s+models?)\b"
    r"|\b(?:are\s+there|do\s+you\s+have|have\s+you\s+got)\s+(?:a\s+lot\s+of|lots\s+of|many|plenty\s+of)\b"
    r"|\b(?:marketplace|catalog|catalogue|hub|market|category)\s+(?:is\s+)?(?:big|large|small|huge)\b"
    r"|\b(?:split|spread|distribution|ratio|balance)\s+(?:between|across|among)\b"
    r"|\b(?:what|which|list|all)\s+(?:(?:of\s+)?the\s+)?categories\b",
    re.IGNORECASE,
)
# What a message may ask about an entry: "Kikitori's pricing", "CodeForge details", "Zusammenfasser: which languages?".
_ATTRIBUTE = (
    r"(?:price|pricing|prices|cost|costs|languages?|regions?|details?|info|specs?|success(?:\s+rate)?|availability|publisher"
    r"|description|page|profile|card|reviews?|rating|uptime|performance|capabilities|docs|documentation)"
)
# A word of a name said before what is asked of it ("CodeForge Mini pricing?"): no joining or question word, no figure.
_NAME_WORD = r"(?!(?:with|for|in|on|of|and|or|that|the|a|an|to|from|at|by|how|what|why|where|when|which|who|does|do|is|are|can)\b)[^\s\d%$?,;:!]+"
# Who a question is about when it is not an entry: "is there …", "does anyone …", "can you …", "is it possible …".
_NOT_AN_ENTRY = r"(?:there|any\w*|you|u|i|we|they|some\w*|a|an|your|my|our|people|it\s+(?:possible|feasible|ok|okay|worth|true))\b"
# Details cues, each with the words that may name the entry ("target"), tried on the message and on each clause. A
# target is at most 120 characters: a cue is tried at each place it may begin, and an unbounded target would make
# that quadratic in a long message.
_DETAILS = [
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        rf"(?<![^\s?'\"])(?P<target>[^\s?'\"]++)'s\s+(?:\w+\s+)?{_ATTRIBUTE}\b",
        r"\bwhat\s+(?:exactly\s+|else\s+)?(?:does|do|did)\s+(?P<target>.{1,120}?)\s+\w+\s*[?.!]*$",
        r"\bwhat\s+(?:does|do)\s+(?P<target>.{1,120}?)\s+(?:do|offer|cost|charge|support|handle|speak|cover)\b",
        r"\bwhat\s+(?:else\s+)?can\s+(?P<target>.{1,120}?)\s+do\b",
        r"\bwhat\s+(?:kind|sort|type)\s+of\s+(?:\w+\s+)?(?:is|are)\s+(?P<target>.{1,120}?)\s*[?.!]*$",
        rf"^(?:is|are|does|do|did|can|could|will|would|has|have)\s+(?!{_NOT_AN_ENTRY})(?P<target>.{{1,120}}?)\s*[?.!]*$",
        rf"^(?P<target>[^\s:;,]+(?:\s+[^\s:;,]+){{0,3}}?)\s*(?::|\s[-–]\s)\s*(?:its\s+|the\s+)?(?:{_ATTRIBUTE}|what|how|who|which|where|is|does|can)\b",
        rf"^(?P<target>{_NAME_WORD}(?:[^\S\n]+{_NAME_WORD}){{0,3}}?)\s+{_ATTRIBUTE}\s*(?:pls|please|plz)?\s*[?.!]*$",
        rf"\b(?:show|see|open|display|give)\s+(?:me\s+|us\s+)?(?P<target>its|their)\s+{_ATTRIBUTE}\b",
        r"\b(?:pull\s+up|look\s+up|lookup|open\s+up|open)\s+(?:the\s+)?(?:(?:card|profile|page|details?|info|entry|listing|record)\s+(?:for|of|on)\s+)?(?P<target>.{1,120})$",
        r"\bhow\s+(?:does|do|did)\s+(?P<target>.{1,120}?)\s+\w+\s*[?.!]*$",
        r"\b(?:where|when)\s+(?:is|are|was|does|do|did)\s+(?P<target>.{1,120}?)\s+(?:hosted|based|located|available|run|running|deployed|made|built|released|published|updated|last\s+\w+)\b",
        r"\bhow\s+much\s+(?:does|do|is|would)\s+(?P<target>.{1,120}?)(?:\s+(?:cost|charge|be))?(?:\s+(?:me|us))?\s*[?.!]*$",
        r"\b(?:which|what)\s+(?:regions?|languages?|countries|places|pricing|price)\s+(?:is|are|does|do|can)\s+(?P<target>.{1,120}?)\s+(?:available|support|supported|offered|speak|handle|cover|run|use|have|in|charge)\b",
        r"\b(?:success\s+rate|pricing|price|prices|cost|costs|availability|regions?|languages?|publisher|performance|uptime|rating)\s+(?:of|for|on)\s+(?P<target>.{1,120})$",
        r"\b(?:details?|info(?:rmation)?|specs?|specifics|particulars|lowdown|rundown|deets|scoop|overview|summary)\s*(?:about|on|for|of|regarding|:)\s*(?P<target>.{1,120})$",
        r"\bhow\s+(?:reliable|good|fast|expensive|cheap|pricey|accurate|popular|available|busy)\s+(?:is|are)\s+(?P<target>.{1,120}?)\s*[?.!]*$",
        r"\bmore\s+(?:about|on)\s+(?P<target>.{1,120})$",
        r"^(?:info|details?|specs?|about)\s+(?P<target>.{1,120})$",
        r"\b(?:curious|wondering|asking)\s+about\s+(?P<target>[^,.;!?]{1,120})",
        r"\bwhat\s+is\s+the\s+(?:deal|story|scoop|catch)\s+(?:with|on|about)\s+(?P<target>.{1,120})$",
        r"\btell\s+me\s+(?:more\s+|everything\s+|all\s+|a\s+bit\s+|something\s+)?(?:about|on|of)\s+(?P<target>.{1,120})$",
        r"\bknow\s+about\s+(?P<target>.{1,120})$",
        r"\b(?:describe|explain|profile\s+of)\s+(?P<target>.{1,120})$",
        r"\bwho\s+(?:publishes|published|made|makes|built|builds|owns|runs|maintains|is\s+behind)\s+(?P<target>.{1,120}?)(?:\s+and\s+.*)?$",
        r"\bshow\s+me\s+the\s+(?:listing|agent|entry|page)\s+(?:for\s+|of\s+|called\s+|named\s+)?(?P<target>.{1,120})$",
        r"\bis\s+(?P<target>.{1,120}?)\s+(?:any\s+good|available|reliable|free|expensive|cheap|running|online|up)\b",
        r"\b(?:profile|card|page)\s+(?:for|of)\s+(?P<target>.{1,120})$",
        r"\beverything\s+(?:you\s+(?:have|know|got)\s+)?(?:on|about)\s+(?P<target>.{1,120})$",
        r"\binterested\s+in\s+(?P<target>[^,.;!?]{1,120})",
        r"\bwhat\s+(?P<target>[^\s?]+(?:\s+[^\s?]+){0,3}?)\s+(?:is|does|supports|offers|costs|charges|handles|covers|includes|means|provides)\s*[?.!]*$",
        r"^(?:what|who)(?:'s|\s+is)\s+(?P<target>.{1,120}?)\s*[?.!]*$",
    )
]
# What follows "the success rate of" when it is a threshold, not a name: "at least 0.9", "95%"; a question; who is no
# entry.
_NOT_A_TARGET = re.compile(
    rf"^(?:at\s+least|over|above|under|below|more\s+than|less\s+than|about|around|[<>=~$€\d.]|(?:how|what|why|where|when|which|who)\b|{_NOT_AN_ENTRY})",
    re.IGNORECASE,
)
_ORDINALS = {"first": 0, "1st": 0, "second": 1, "2nd": 1, "third": 2, "3rd": 2, "fourth": 3, "4th": 3, "fifth": 4,
             "5th": 4, "sixth": 5, "6th": 5, "seventh": 6, "7th": 6, "eighth": 7, "8th": 7, "ninth": 8, "9th": 8,
             "tenth": 9, "10th": 9, "last": -1, "top": 0}  # fmt: skip
_ORDINAL = re.compile(
    rf"\b(?:the\s+)?(?P<word>{'|'.join(_ORDINALS)})\s+(?:one|result|listing|agent|option|match|hit|entry|item|bot|tool)\b"
    rf"|\bthe\s+(?P<bare>{'|'.join(w for w in _ORDINALS if w != 'top')})\b\s*[?.!]*$"
    r"|(?:#|\bnumber\s+|\bno\.?\s*|\bresult\s+|\boption\s+)(?P<number>\d{1,2})\b",
    re.IGNORECASE,
)
_PRONOUN = re.compile(
    r"\b(?:its?|their|that\s+one|this\s+one|the\s+same\s+one|that\s+(?:agent|listing|bot|tool|service)|this\s+(?:agent|listing|bot|tool|service))\b",
    re.IGNORECASE,
)


def read(message: str) -> Reading:
    """What ``message`` asks for, from its words alone. A request may open any clause of it ("we decided on
    MedScribe, go ahead and launch it"), so the cues that open a request are tried on each clause."""
    text = normalize(message)
    lines = "\n".join(clauses(text))  # one clause a line: ^ and $ (MULTILINE) are a clause's ends
    new_agent = registration(text, lines)
    if new_agent is not None and not _INSTANCE.search(text):
        return Reading(Intent.register_agent, text, new_agent=new_agent)
    start = _start(text, lines)
    if start is not None:
        return start
    if _STATS.search(text):
        return Reading(Intent.stats, text)
    details = _details(text, lines)
    if details is not None:
        return details
    return searching(text)


def searching(text: str) -> Reading:
    """``text`` (normalised) read as a search: its need and filters; help when it says no need at all."""
    need, wanted = need_and_filters(text)
    return Reading(Intent.search if content_words(need) else Intent.help, text, need=need, wanted=wanted)


def _start(text: str, lines: str) -> Reading | None:
    """Starting an instance: a strong verb (start, launch, deploy …) opening a clause, or a weak one (create, get …)
    with 'instance'. Without 'instance', only if the object turns out to name a listing (tentative)."""
    match = _START.search(lines) or (_WEAK_START.search(lines) if _INSTANCE.search(text) else None)
    context = ""
    if match is not None:
        rest = next(g for g in (match.groupdict().get(k) for k in ("object", "running", "setup")) if g is not None)
        context = _around(lines, match)
    elif (instance_of := _INSTANCE_OF.search(text)) is not None:
        rest = text[instance_of.end() :]
    elif (own := _OWN_COPY.search(text)) is not None:
        rest = own.group("object") or own.group("dedicated")
    else:
        return None
    reference = _reference(rest, _object(rest), context)
    tentative = not _INSTANCE.search(text) and not reference.pronoun and reference.position is None
    return Reading(Intent.start_instance, text, reference=reference, tentative=tentative)


def _object(rest: str) -> str:
    """The words after a start verb that may name the listing: 'an instance of X', 'a new X instance', 'X for me'."""
    words = re.sub(r"^\s*(?:up\b)?\s*", "", rest)
    words = re.sub(r"^(?:(?:an?|one|1|another|the|new|my|our|me|us|fresh|own|running|private|dedicated|please)\s+)*(?:new\s+)?(?:(?:instances?|copy|copies)\s+(?:of|for)\s+)?(?:the\s+)?", "", words, flags=re.IGNORECASE)
    words = re.sub(r"\s+(?:instance|for\s+(?:me|us)|in\s+my\s+\w+|on\s+my\s+\w+|please|now|right\s+now|asap|up|again)\b.*$", "", words, flags=re.IGNORECASE)
    return words.strip(" ?!.,;:'\"")


def _details(text: str, lines: str) -> Reading | None:
    """A details cue and what it is about; words that may name an entry win over "it" ('who publishes X and what
    does it do')."""
    found = []
    for cue in _DETAILS:
        for said in (text, lines):
            match = cue.search(said)
            if match is not None:
                target = re.sub(r"^(?:the|a|an)\s+", "", match.group("target").strip(" ?!.,;:'\""), flags=re.IGNORECASE)
                if not _NOT_A_TARGET.match(target):
                    found.append(_reference(target, target, _around(said, match)))
                    break
    if found:
        reference = next((r for r in found if r.words and not r.pronoun), found[0])
        return Reading(Intent.details, text, reference=reference, tentative=bool(reference.words) and not reference.pronoun)
    reference = _reference(text, "")
    if reference.position is not None:  # "and the second one?"
        return Reading(Intent.details, text, reference=reference)
    return None


def _around(said: str, match: re.Match[str]) -> str:
    """The words of ``said`` outside ``match``: where "it" may be named ('we decided on MedScribe, launch it')."""
    return " ".join(f"{said[: match.start()]} {said[match.end() :]}".split()).strip(" ,.;:!?-")


def _reference(text: str, target: str, context: str = "") -> Reference:
    """The entry ``text`` is about: a place in the last results, "it" (named in ``context``, the message's other
    words, or else the entry the conversation is about), or the words of ``target``."""
    ordinal = _ORDINAL.search(text)
    if ordinal is not None:
        if ordinal.group("number"):
            position = int(ordinal.group("number")) - 1
        else:
            position = _ORDINALS[(ordinal.group("word") or ordinal.group("bare")).lower()]
        return Reference(position=position)
    target = target.strip()
    if _PRONOUN.fullmatch(target) or (target and _PRONOUN.match(target)) or (not target and _PRONOUN.search(text)):
        return Reference(words=context if content_words(context) else "", pronoun=True)
    return Reference(words=target)
