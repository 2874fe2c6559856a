"""Success rates as people say them, brought to the words the search's reader takes as a floor ("at least 95%"):
'99% success rate', 'works 98% of the time', 'reliability above 99', 'success rate 0.97+', '9 out of 10', and
failure shares, whose complement is the floor ('fails less than 2% of the time', 'an error rate under 1%')."""

from __future__ import annotations

import re

# Words that say a success rate, once its figure is read: no part of the need.
SUCCESS_WORDS = re.compile(
    r"\b(?:with\s+(?:a\s+)?)?(?:(?:strong|proven|good|solid)\s+)?(?:success(?:\s*rate)?|reliability|reliable|uptime|succeed(?:s|ing)?|(?:track\s+)?record)\b(?:\s+(?:rate|record|of|at))*(?:\s+(?:of\s+)?the\s+time)?(?:\s+(?:minimum|min|at\s+least))?"
    r"|\bworks?\s+(?:at\s+least\s+)?(?=\d{1,3}(?:\.\d+)?\s*%\s*(?:of\s+the\s+time)?)|\bof\s+the\s+time\b",
    re.IGNORECASE,
)
# A success rate's figure: "at least 95%", "98% or better", "0.9".
_FLOOR = r"(?:(?:of\s+)?at\s+least|over|above|more\s+than|>=?|min(?:imum)?(?:\s+of)?)"
_PCT = r"\d{1,3}(?:\.\d+)?\s*%"
_AT_MOST = r"(?:less\s+than|under|below|at\s+most|no\s+more\s+than|not\s+more\s+than|max(?:imum)?(?:\s+of)?|<=?)"
_OR_BETTER = r"(?:\+|or\s+(?:better|more|higher|above))?"
PERCENT_LEFT = re.compile(rf"(?:{_FLOOR}\s*)?{_PCT}\s*{_OR_BETTER}", re.IGNORECASE)
_BARE_SUCCESS = re.compile(rf"(?P<pct>\d{{1,3}}(?:\.\d+)?)\s*%\s*{_OR_BETTER}", re.IGNORECASE)
_SUCCESS_CONTEXT = re.compile(r"success|reliab|uptime|succeed|of\s+the\s+time|works|record|out\s+of", re.IGNORECASE)
# "9 out of 10", "1 in 100": a share of tasks, in a message about success or failure.
_RATIO = re.compile(r"\b(?P<n>\d{1,4})\s+(?:out\s+of|in)\s+(?P<m>\d{1,4})\b", re.IGNORECASE)
_OUTCOME = re.compile(r"succe|fail|work|error|reliab|crash", re.IGNORECASE)
# A failure share: "fails less than 2% of the time", "error rate under 1%", "under 5% failures".
_FAILURE = re.compile(
    rf"\b(?:fail(?:s|ing|ures?)?|errors?(?:\s+out)?|crash(?:es)?|breaks?)(?:\s+rates?)?\s+(?:(?:of|is|at|in)\s+)?(?:{_AT_MOST}\s*)?(?P<pct>\d{{1,3}}(?:\.\d+)?)\s*%(?:\s+of\s+the\s+time)?"
    rf"|(?:{_AT_MOST}\s*)?(?P<before>\d{{1,3}}(?:\.\d+)?)\s*%\s+(?:failures?|errors?|fail|crash(?:es)?)(?:\s+rates?)?\b",
    re.IGNORECASE,
)
# "reliability above 99": a percentage without its sign, after a success noun.
_SUCCESS_NUMBER = re.compile(rf"\b(?:success(?:\s+rate)?|reliability|uptime)\s+(?:of\s+)?(?:{_FLOOR}\s*)?(?:[5-9]\d|100)(?:\.\d+)?(?![\d.%]|\s*(?:%|percent|per\s+cent))", re.IGNORECASE)
_SUCCESS_NOUN_AFTER = re.compile(rf"(?P<percent>(?:{_FLOOR}\s*)?{_PCT})\s*(?P<noun>(?:reliab|uptime|success)\w*(?:\s+rate)?)", re.IGNORECASE)
# "at least 0.9", "success rate 0.97+": a success rate as a fraction.
_SUCCESS_FRACTION = re.compile(rf"(?:{_FLOOR}|(?<=rate)|(?<=reliability)|(?<=uptime))\s*(?:of\s+)?(?P<value>0?\.\d+)\b\+?", re.IGNORECASE)
# "no less than 95%": a floor (the search's reader would take "less than 95" for a price).
_NO_LESS = re.compile(r"\b(?:no|not)\s+(?:less|lower)\s+than\s+(?=\d{1,3}(?:\.\d+)?\s*%)", re.IGNORECASE)
_FLOOR_BEFORE = re.compile(r"(?:least|over|above|than|min\w*|>=?)\s*$", re.IGNORECASE)


def as_floors(text: str) -> str:
    """'99% success rate', 'works 98% of the time', '9 out of 10': a share about success with no 'at least' is a
    floor; a failure share ('fails less than 2% of the time') is the floor of its complement."""
    if _OUTCOME.search(text):
        text = _RATIO.sub(_ratio, text)
    text = _NO_LESS.sub("at least ", text)
    text = _FAILURE.sub(lambda m: f"at least {100 - float(m.group('pct') or m.group('before')):g}% success", text)
    if not _SUCCESS_CONTEXT.search(text):
        return text
    text = _SUCCESS_FRACTION.sub(lambda m: f"at least {float(m.group('value')) * 100:g}%", text)
    text = _SUCCESS_NUMBER.sub(r"\g<0>%", text)
    text = _SUCCESS_NOUN_AFTER.sub(r"\g<noun> \g<percent>", text)  # the search's reader would take half the word
    return _BARE_SUCCESS.sub(lambda m: m.group(0) if _FLOOR_BEFORE.search(text, max(0, m.start() - 24), m.start()) else f"at least {m.group('pct')}%", text, count=1)


def _ratio(match: re.Match[str]) -> str:
    """'9 out of 10' as a percentage."""
    shown, out_of = int(match.group("n")), int(match.group("m"))
    return f"{100 * shown / out_of:g}%" if 0 < shown <= out_of else match.group(0)
