"""Bringing a chat message to the words the reader knows: amounts said in words ("twenty cents a go" → "20 cents
per request"), percentages, free said as a price of nothing, the Spanish, French and German words for the
marketplace's constraints and commands (``foreign.py``), and cue words misspelt by a slip ("detials"); and the
pieces every pattern shares: how a request begins, the verbs that start an instance, a message's clauses.

Only the words that carry a constraint or a command are rewritten; what the user wants (the need) keeps their own
words, in their own language.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA, Indel

from .foreign import in_english

_UNITS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_NUMBER_WORDS = "|".join([*sorted(_UNITS, key=len, reverse=True), "a hundred", "hundred"])
_MONEY_UNIT = r"(?=\s*(?:cents?\b|dollars?\b|bucks?\b|euros?\b|pennies\b|%|percent\b|per cent\b))"
# "twenty five cents", "ninety-nine percent", "two hundred dollars": a number said in words before a unit of money or %.
_NUMBER = re.compile(rf"\b(?:(?:{_NUMBER_WORDS})[\s-]+(?:and\s+)?){{0,5}}(?:{_NUMBER_WORDS}){_MONEY_UNIT}", re.IGNORECASE)
# Fractions and coins, as amounts of money.
_MONEY_WORDS = (
    (r"\ba tenth of a cent\b", "0.1 cents"), (r"\bhalf a cent\b", "0.5 cents"), (r"\ba quarter of a cent\b", "0.25 cents"),
    (r"\bhalf a dollar\b", "0.5 dollars"), (r"\b(?:a|one) (?:penny|single cent)\b", "1 cent"), (r"\ba nickel\b", "5 cents"),
    (r"\ba dime\b", "10 cents"), (r"\ba couple of cents\b", "2 cents"), (r"\ba (?:buck|dollar)\b", "1 dollar"),
    (r"\ba euro\b", "1 euro"), (r"\ba cent\b", "1 cent"), (r"\bbucks?\b", "dollars"), (r"\bpennies\b", "cents"),
)  # fmt: skip
# A price's unit said loosely: "20 cents a go", "$1 each", "a pop": per request.
_PER_USE = re.compile(r"(?<=\d)(\s*(?:cents?|¢|c|dollars?|usd|euros?|eur)?)\s+(?:a|per|each)\s+(?:go|pop|use|run|shot|time)\b|(?<=\d)(\s*(?:cents?|¢|dollars?|usd|euros?)?)\s+(?:each|apiece)\b")
# A number starts where no digit precedes it, and has at most 12 digits a side: a match is tried once per number,
# not once per digit of a 4,000-digit one.
_DIGITS = r"(?<![\d.,])\d{1,12}(?:[.,]\d{1,12})?"
_PRICE = rf"(?:\$|usd\s*|€)?{_DIGITS}\s*(?:cents?|¢|c\b|dollars?|usd|euros?|eur)?"
_PER_UNIT = r"\s*(?:a|an|per|each|every|/)\s*(?:request|req|call|query|task|job|message|hour|hr|minute|min)s?\b"
# "$1 per request max", "20 cents tops", "5 dollars or less": a ceiling said after the amount, said before it instead.
_CEILING_AFTER = re.compile(rf"(?P<price>{_PRICE})(?P<unit>{_PER_UNIT})?\s*,?\s*(?:max(?:imum)?|tops|or less|or cheaper|or under|at most|at the most)\b", re.IGNORECASE)
# "for 20 cents a request", "I'd pay $2 an hour": a price with its unit is a ceiling.
_CEILING_WORDS = re.compile(rf"\b(?:for|at|around|about|pay(?:ing)?|spend(?:ing)?)\s+(?={_PRICE}{_PER_UNIT})", re.IGNORECASE)
# "costs zero", "costing $0", "for nothing": a price of nothing is free.
_ZERO_PRICE = re.compile(
    r"\b(?:costs?|costing|priced\s+at|at|for)\s+(?:\$\s?0(?:\.0+)?(?![\d.,])|0(?:\.0+)?\s*(?:dollars?|usd|cents?|euros?)\b|zero(?:\s+(?:dollars?|cents?|euros?))?\b|nothing\b)",
    re.IGNORECASE,
)
# An amount of money with its unit said with no ceiling word ("a ten cent per call chatbot") is a ceiling too.
_PRICE_PER_UNIT = re.compile(rf"(?:(?:\$|usd\s*|€){_DIGITS}|{_DIGITS}\s*(?:cents?|¢|dollars?|usd|euros?|eur)\b){_PER_UNIT}", re.IGNORECASE)
_BOUND_BEFORE = re.compile(r"(?:under|below|less\s+than|cheaper\s+than|at\s+most|no\s+more\s+than|max(?:imum)?(?:\s+of)?|up\s+to|within|over|above|more\s+than|at\s+least|min(?:imum)?|from|between|and|to|<|>|=|\$|€)\s*$", re.IGNORECASE)
# "budget is like half a cent", "nothing above 2 cents", "not exceeding $1": ceilings the search's reader does not know.
_CEILING_PHRASES = re.compile(
    r"\b(?:budget(?:\s*:|\s+is|\s+of)?(?:\s+(?:like|around|about|roughly|approximately|maybe|max))?|nothing\s+(?:over|above|more\s+than|higher\s+than|pricier\s+than)"
    rf"|no\s+(?:higher|pricier)\s+than|not\s+(?:over|above|exceeding|more\s+than)|capped\s+at|at\s+or\s+(?:below|under))\s+(?={_PRICE})",
    re.IGNORECASE,
)
# Contractions of the asking ("what's", "I'm", "that's"), spelled out; a name's "'s" ("ContractScan's") stays.
_CONTRACTIONS = (
    (r"\b(what|that|there|who|where|how)'?s\b", r"\1 is"), (r"\b(it|here)'s\b", r"\1 is"), (r"\bI'm\b", "I am"), (r"\bI'd\b", "I would"),
    (r"\b(you|we|they)'re\b", r"\1 are"), (r"\blet's\b", "let us"), (r"\b(do|does|is|are|can)n't\b", r"\1 not"),
    (r"\bw/o\b", "without"), (r"\bw/", "with "), (r"\bper-(request|call|query|hour|minute|min|hr|use)\b", r"per \1"),
    (r"\b(we|you|they)'d\b", r"\1 would"), (r"\bper\s+(?:api|http|web|single|individual)\s+(?=(?:request|call|query)s?\b)", "per "),
    # texting: "sumthing 2 transcribe meetings", "an app 4 my taxes"
    (r"\b(sumthing|somethin|something|smth|sth|thing|tool|bot|agent|app|one|anything|someone|somebody) 2 (?=[a-z])", r"\1 to "),
    (r"\b(sumthing|somethin|something|smth|sth|thing|tool|bot|agent|app|one|anything|someone|somebody) 4 (?=[a-z])", r"\1 for "),
)  # fmt: skip
_PERCENT = re.compile(rf"({_DIGITS})\s*(?:%|percent\b|per cent\b|pct\b|por ciento\b)")

# Words that say a thing is free of something else, not free of charge.
_NOT_GRATIS = re.compile(r"\b(?:feel[- ]free|free[- ]form|\w+-free|free of(?! charge))\b", re.IGNORECASE)

def normalize(message: str) -> str:
    """The message with amounts, percentages and foreign cue words in the reader's terms (case kept)."""
    text = unicodedata.normalize("NFKC", message).replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = text.replace("¿", " ").replace("¡", " ")
    text = " ".join(text.split())
    for pattern, replacement in _CONTRACTIONS:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    text = _LOWER_WORD.sub(_respelled, in_english(text))
    text = _NOT_GRATIS.sub(lambda m: re.sub(r"[- ]", "_", m.group(0)), text)  # one word: no longer "free" alone
    for pattern, replacement in _MONEY_WORDS:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    text = _NUMBER.sub(_number, text)
    text = _PER_USE.sub(lambda m: f"{m.group(1) or m.group(2) or ''} per request", text)
    text = _CEILING_AFTER.sub(lambda m: f"under {m.group('price').strip()}{m.group('unit') or ''}", text)
    text = _CEILING_WORDS.sub("under ", text)
    text = _CEILING_PHRASES.sub("under ", _ZERO_PRICE.sub("free", text))
    text = _PRICE_PER_UNIT.sub(lambda m: m.group(0) if _BOUND_BEFORE.search(text, max(0, m.start() - 24), m.start()) else f"under {m.group(0)}", text)
    return _PERCENT.sub(lambda m: m.group(1).replace(",", ".") + "%", text)


# The words the reader's cues are made of, which a slip of the keyboard must not hide ("regsiter", "detials").
_CUE_WORDS = tuple(
    """register enrol enroll onboard launch deploy provision instantiate instance instances details detail describe
    statistics category categories capabilities capability skills listing listings search searching looking recommend
    suggest pricing languages regions success reliability hosted charged billed""".split()
)  # fmt: skip
_LOWER_WORD = re.compile(r"(?<![\w'-])[a-z]{6,}(?![\w'-])|(?<![\w'-])[A-Z]{6,}(?![\w'-])")


def _respelled(match: re.Match[str]) -> str:
    """A word (all lowercase or all caps: not a name) as the cue word it misspells, if it does."""
    word = match.group(0)
    cue = _cue_misspelt(word.lower())
    return word if cue is None else cue.upper() if word.isupper() else cue


@lru_cache(maxsize=4096)
def _cue_misspelt(word: str) -> str | None:
    """The cue word ``word`` misspells by one letter left out, doubled or swapped with the next (not changed: a
    changed letter turns real words into cue words, "retail" into "detail"); None if it misspells none."""
    if word in _CUE_WORDS:
        return None
    found = process.extractOne(word, _CUE_WORDS, scorer=OSA.distance, score_cutoff=1)
    if found is None:
        return None
    cue = found[0]
    slipped = Indel.distance(word, cue) == 1 if len(word) != len(cue) else sorted(word) == sorted(cue)
    return cue if slipped else None


def _number(match: re.Match[str]) -> str:
    """A number said in words ("twenty five", "a hundred") as digits."""
    value = current = 0
    for word in re.findall(r"[a-z]+", match.group(0).lower()):
        if word == "hundred":
            current = (current or 1) * 100
        elif word in _UNITS:
            current += _UNITS[word]
    value += current
    return str(value)


_FILLER = r"(?:(?:hey|hi|hello|ok|okay|so|yo|um+|uh+|please|pls|plz|kindly|hmm+|well|now|and|also|quick question)\b[\s,.!:;-]*)*"
_POLITE = (
    r"(?:(?:(?:can|could|would|will)\s+(?:you|u|i|we)|i(?:'d|\s+would)\s+like(?:\s+you)?\s+to|i\s+want(?:\s+you)?\s+to|"
    r"i\s+wanna|i\s+need(?:\s+you)?\s+to|help\s+me|let'?s|let\s+us|go\s+ahead\s+and|we(?:'d|\s+would)\s+like\s+to|"
    r"we\s+want\s+to|please|pls|plz|just|quickly)\b[\s,]*)*"
)
# How a message may begin before it says what it wants: "hey, could you please …", "I'd like to …".
LEAD = _FILLER + _POLITE
# Verbs that start an instance of a listing.
START_VERBS = (
    r"start(?:\s+up)?|launch|spin(?:\s*up)?|deploy|run|fire(?:\s+up)?|provision|instantiate|boot(?:\s+up)?|kick\s+off|stand\s+up"
    r"|bring\s+up|restart|activate|turn\s+on|switch\s+on|power\s+up|set\s+up|initiate|install|roll\s+out|kick[\s-]?start|enable"
)
# Where a message's clauses part: the end of a sentence, a semicolon, a comma, a dash between words, a colon before
# words, and "and" or "so" before a new request ("we're a law firm and need dictation").
_CLAUSE_BREAK = re.compile(
    r"\s*(?:[!?;,]+|\.(?=\s|$)|\s[-–—]+(?=\s)|:(?=\s)|\s(?:and|so|but)(?=\s+(?:i\s+|we\s+)?(?:need|want|require|would\s+like|am\s+looking|are\s+looking)\b))\s*"
)


def clauses(text: str) -> list[str]:
    """The clauses of ``text``, in order, without their punctuation (empty ones left out). Runs of spaces are one
    first: a pattern that starts with spaces would be tried at each space of a run."""
    return [part for part in _CLAUSE_BREAK.split(" ".join(text.split())) if part]
