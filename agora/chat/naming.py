"""Names and categories as a message says them, settled against what the catalog's tools return: a name in any case
and spacing, or with one slip; a category named for the kind of agent wanted."""

from __future__ import annotations

import re

from rapidfuzz.distance import OSA


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def squeezed(name: str) -> str:
    """A name as letters and digits only: 'Voxa-TTS', 'voxa tts' and 'VoxaTTS' are one name."""
    return "".join(tokens(name))


def names_in(text: str, names: list[str]) -> str | None:
    """The longest of ``names`` said in ``text``, in any case and spacing: its letters and digits are those of a
    run of whole words of the text ('tell me about scribe eu' says Scribe-EU; 'describe' does not say 'scribe').
    Failing that, the name a run misspells by one slip."""
    words = tokens(text)
    runs = {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, min(len(words), i + 8) + 1)}
    said = [n for n in names if squeezed(n) and squeezed(n) in runs]
    if not said:
        by_length: dict[int, list[str]] = {}
        for run in runs:
            by_length.setdefault(len(run), []).append(run)
        said = [n for n in names if len(squeezed(n)) >= 5 and _misspelt(squeezed(n), by_length)]
    return max(said, key=lambda n: len(squeezed(n)), default=None)


def _misspelt(name: str, runs_by_length: dict[int, list[str]]) -> bool:
    """Whether a run is ``name`` with one slip (a letter more, less, changed, or two swapped)."""
    nearby = (run for size in (len(name) - 1, len(name), len(name) + 1) for run in runs_by_length.get(size, ()))
    return any(OSA.distance(name, run, score_cutoff=1) <= 1 for run in nearby)


# Verbs whose object is what the agent works on: "translate legal contracts" wants a translator, not a legal agent.
_WORKS_ON = frozenset(
    """translate translates dub dubs transcribe transcribes summarize summarizes summarise summarises analyze analyzes
    analyse analyses review reviews edit edits scan scans process processes caption captions subtitle subtitles
    moderate moderates check checks read reads write writes draft drafts parse parses extract extracts convert
    converts classify classifies tag tags index indexes monitor monitors clean cleans handle handles manage manages
    proofread proofreads sort sorts file files""".split()
)  # fmt: skip
# Nouns for what an agent works on: "a summarizer for legal docs" wants a summarizer, not a legal agent.
_INPUTS = frozenset(
    """doc docs document documents contract contracts file files filings text texts email emails paper papers pdf pdfs
    record records case cases report reports form forms article articles letter letters question questions content
    posts post clips clip footage recordings recording transcripts transcript data notes invoices receipts""".split()
)  # fmt: skip


def category_in(text: str, categories: list[str]) -> str | None:
    """The category whose name the text uses for the kind of agent wanted, hyphens read as spaces ('speech to
    text' is speech-to-text). A word near it ('translator', 'videos') is not the category, nor is the category's
    name as what the agent works on ('translate legal contracts', 'a summarizer for legal docs')."""
    words = tokens(text.replace("-", " "))
    said = []
    for category in categories:
        name = tokens(category.replace("-", " "))
        for i in range(len(words) - len(name) + 1):
            after = words[i + len(name)] if i + len(name) < len(words) else ""
            if words[i : i + len(name)] == name and (i == 0 or words[i - 1] not in _WORKS_ON) and after not in _INPUTS:
                said.append(category)
                break
    return max(said, key=len, default=None)
