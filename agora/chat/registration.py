"""A message that registers a new agent: the ask (register, enrol, sign up, "add QuoteBot to the hub", "I built an
agent, X: can you register it?"), the agent's name and its capabilities, in the words the hub takes for them."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .wording import LEAD


@dataclass(frozen=True)
class NewAgent:
    name: str | None  # None: the message did not say it
    capabilities: list[str]


_PLATFORM = r"(?:to|on|onto|into|in)\s+(?:the\s+|this\s+|your\s+)?(?:hub|platform|marketplace|catalog|catalogue|directory|registry|agora)\b"
# "add QuoteBot to the hub", "put my agent 'x.y' on the platform": a registration said as placing it.
_PLACED = rf"(?:(?:my|our)\s+)?(?:new\s+)?(?:(?:agent|bot)\s+)?['\"]?(?P<placed>[A-Za-z0-9][A-Za-z0-9_.\-]*)['\"]?\s+(?:up\s+)?{_PLATFORM}"
_REGISTER = re.compile(
    rf"^{LEAD}(?:register|enrol+|enroll|sign[\s-]?up|onboard)\b"
    rf"|^{LEAD}(?:add|create|make|set[\s-]?up|build|submit|list|publish|upload|connect|hook\s+up|plug\s+in)\s+(?:(?:a|an|my|our|the|one)\s+)?(?:new\s+)?(?:agent|bot)\b"
    rf"|^{LEAD}(?:a\s+)?new\s+(?:agent|bot)\b"
    rf"|^{LEAD}(?:add|put|bring|get|place|hook|connect|plug|attach)\s+{_PLACED}",
    re.IGNORECASE | re.MULTILINE,
)
# "I built an agent, X. can you register it?": the agent said elsewhere in the message.
_REGISTER_IT = re.compile(rf"^{LEAD}(?:register|enrol+|enroll|sign[\s-]?up|onboard|add|list)\s+(?:it|him|them)\b", re.IGNORECASE | re.MULTILINE)
_AN_AGENT = re.compile(r"\b(?:my|our|a|an)\s+(?:new\s+)?(?:[\w-]+\s+)?(?:agent|bot)\b", re.IGNORECASE)
_NAME = r"['\"]?(?P<name>[A-Za-z0-9][A-Za-z0-9_.\-]{0,127})['\"]?"
_NAMED = re.compile(rf"\b(?:named|called|(?:call|name)\s+it|with\s+(?:the\s+)?name|as|name)\b\s*[:=]?\s*{_NAME}", re.IGNORECASE)
_AGENT_THEN_NAME = re.compile(rf"\b(?:agent|bot)\s*[:,]?\s+{_NAME}", re.IGNORECASE)
_VERB_THEN_NAME = re.compile(rf"^{LEAD}(?:register|enrol+|enroll|sign[\s-]?up|onboard)\s+(?:(?:my|our|a|an|the)\s+)?(?:new\s+)?(?:(?:agent|bot)\s+)?{_NAME}", re.IGNORECASE | re.MULTILINE)
_NOT_A_NAME = frozenset("a an the new my our this that with for named called name which who agent bot as to it its me us is and please".split())
# A word before "agent" or "bot" says what kind it is ("our in-house bot NightlyBackup"), not what it is called.
_KIND_OF = re.compile(r"\s+(?:agent|bot)\b", re.IGNORECASE)
_CAPABILITIES = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(?:capabilit(?:y|ies)|skills?|abilities|can\s+do)\b\s*(?::|=|of|are|is|include|including)?\s*(?P<caps>.+)$",
        r"\b(?:it|that|which|who|and)\s+(?:can|will|could|should)\s+(?:do\s+|handle\s+|perform\s+|provide\s+|offer\s+)?(?P<caps>.+)$",
        r"\b(?:it|that|which|who)\s+(?:does|handles|performs|offers|provides|supports|knows)\s+(?P<caps>.+)$",
        r"\b(?:able|capable)\s+(?:to|of)\s+(?P<caps>.+)$",
        r"\b(?:it|that|which|who)\s+(?P<caps>(?!(?:is|was|has|does)\b)[a-z]+s\s+.+)$",
        r"\b(?:for|doing|to\s+do)\s+(?P<caps>.+)$",
    )
]


def registration(text: str, lines: str) -> NewAgent | None:
    """The new agent ``text`` registers (``lines``: its clauses, one a line), or None when it registers none."""
    if _REGISTER.search(lines) or (_REGISTER_IT.search(lines) and _AN_AGENT.search(text)):
        return _new_agent(text, lines)
    return None


def _new_agent(text: str, lines: str) -> NewAgent:
    """The new agent's name (said after 'named', the register verb or 'agent', or placed 'on the hub') and its
    capabilities (said after the name)."""
    name = None
    placed = _REGISTER.search(lines)
    if placed is not None and placed.groupdict().get("placed"):
        name = placed.group("placed").rstrip("._-")
    for pattern, said in () if name else ((_NAMED, text), (_VERB_THEN_NAME, lines), (_AGENT_THEN_NAME, text)):
        for match in pattern.finditer(said):
            candidate = match.group("name").rstrip("._-")
            if candidate and candidate.lower() not in _NOT_A_NAME and not _KIND_OF.match(said, match.end()):
                name = candidate
                break
        if name:
            break
    after = text.split(name, 1)[1] if name else text
    after = re.sub(rf"^['\"]?\s*{_PLATFORM}", " ", after, flags=re.IGNORECASE)
    after = re.sub(r"\bwith\s+(?:the\s+)?id\s+\S+", " ", after, flags=re.IGNORECASE)  # seed 001's ids: the hub makes ids
    capabilities: list[str] = []
    for pattern in _CAPABILITIES:
        match = pattern.search(after)
        if match is not None:
            capabilities = _capability_list(match.group("caps"))
            if capabilities:
                break
    return NewAgent(name, capabilities)


def _ascii(text: str) -> str:
    """Latin letters without their accents ("traducción" → "traduccion"): capabilities are ASCII."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _capability_list(phrase: str) -> list[str]:
    """'pdf and splitting', 'invoice extraction and OCR.' → ['pdf', 'splitting'], ['invoice-extraction', 'ocr']."""
    phrase = re.split(r"(?<![A-Za-z0-9])\.(?:\s|$)|[!?;]", phrase)[0]
    found = []
    for part in re.split(r",|\b(?:and|plus|y|et|und)\b|&|/|\+|\bas\s+well\s+as\b", phrase, flags=re.IGNORECASE):
        words = [w for w in re.findall(r"[a-z0-9]+", _ascii(part).lower()) if w not in ("a", "an", "the", "do", "some", "things", "stuff", "tasks", "task")]
        if words:
            found.append("-".join(words)[:64])
    return list(dict.fromkeys(found))
