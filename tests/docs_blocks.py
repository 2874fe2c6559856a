"""The docs' code blocks and what each is marked to be (issue 62: every command and block in the docs is tested).

Every fenced block in ``docs/`` (the generated reference aside) follows a marker, an HTML comment on the line before it
(invisible on the site):

``<!-- run -->``
    Run it, in order with the page's other blocks, in the repository's root: ``bash`` in a bash of its own, where the
    variables earlier blocks set (``INSTANCE=…``, capitals) are set again, as in the reader's terminal; ``python`` with
    the virtualenv's interpreter; ``ts`` never (see ``file``). A Python line ``print(...)  # text`` says what it
    prints: the lines printed include those texts, in order. A bash block fails at its first failing command.
``<!-- run: background; ready: COMMAND -->``
    Start it and leave it running (a hub, an agent) until the page is done; go on once COMMAND (bash) succeeds.
``<!-- run: install -->``
    The install itself: run as written by the fresh-machine walk-through (``tests/test_docs_walkthrough.py``); in
    other runs the test's own virtualenv stands in for the one it makes.
``<!-- output -->``
    What the run block before it prints: each line matches in order; a line ``...`` matches any lines.
``<!-- file: PATH -->``
    The text of PATH, a file in the repository (the runnable example the page shows): it must be there, word for word.
``<!-- not run: WHY[; check: COMMAND] -->``
    Cannot run here (a Kubernetes cluster, a registry, a model's API key). It is still parsed (bash -n, Python's
    compiler, JSON, YAML), and COMMAND, when given, validates what it describes (``kubectl kustomize …``).

Content tabs (``=== "Python"``) are alternatives: a page with tabs runs once per tab position (the first tab of
every tab group, then the second, …), each run in a session of its own.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = DOCS / "reference"  # written by agora.catalog.docgen from the catalog: tests/test_docs.py checks it

_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<body>.*?)\s*-->\s*$")
_TAB = re.compile(r'^(?P<indent>\s*)=== "(?P<label>[^"]+)"\s*$')
KINDS = ("run", "output", "file", "not run")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str  # dedented, ending in a newline
    kind: str  # one of KINDS, or "" when the block has no marker
    options: dict[str, str] = field(default_factory=dict)  # "background", "ready", "install", "file", "why", "check"
    tab: tuple[int, int, str] | None = None  # (tab group, position in the group, label) for a block inside a tab

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _marker(text: str) -> tuple[str, dict[str, str]]:
    """``run: background; ready: agora health`` → ("run", {"background": "", "ready": "agora health"})."""
    if text.startswith("not run:"):  # the reason is prose, ';' and all, up to "; check:"
        why, _, check = text.removeprefix("not run:").partition("; check:")
        return "not run", {"why": why.strip(), **({"check": check.strip()} if check else {})}
    head, _, rest = text.partition(";")
    kind, _, value = head.partition(":")
    kind, value = kind.strip(), value.strip()
    options: dict[str, str] = {}
    if kind == "file":
        options["file"] = value
    elif value:
        options[value] = ""
    for part in filter(None, (p.strip() for p in rest.split(";"))):
        key, _, val = part.partition(":")
        options[key.strip()] = val.strip()
    return kind, options


def blocks(page: Path) -> list[Block]:
    """The page's fenced blocks, in order, with their markers and tabs."""
    lines = page.read_text().splitlines()
    found: list[Block] = []
    group, last_tab_indent, position, label = -1, None, 0, ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if tab := _TAB.match(line):
            if last_tab_indent != len(tab["indent"]) or not _same_group(lines, i):
                group, position = group + 1, 0
            else:
                position += 1
            last_tab_indent, label = len(tab["indent"]), tab["label"]
            i += 1
            continue
        if line.strip() and not line.startswith(" ") and last_tab_indent is not None and not _TAB.match(line):
            last_tab_indent = None  # text at the margin ends the tab group
        fence = _FENCE.match(line)
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        kind, options = ("", {})
        if marker := _MARKER.match(previous):
            kind, options = _marker(marker["body"])
        in_tab = last_tab_indent is not None and len(fence["indent"]) > last_tab_indent
        found.append(
            Block(
                page=page, line=i + 1, lang=fence["lang"], code=textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n",
                kind=kind, options=options, tab=(group, position, label) if in_tab else None,
            )
        )  # fmt: skip
        i = end + 1
    return found


def _same_group(lines: list[str], i: int) -> bool:
    """Whether the tab at line ``i`` continues the group above it (only the tab's own content lies between)."""
    indent = len(lines[i]) - len(lines[i].lstrip())
    for j in range(i - 1, -1, -1):
        text = lines[j]
        if not text.strip():
            continue
        if _TAB.match(text) and len(text) - len(text.lstrip()) == indent:
            return True
        if len(text) - len(text.lstrip()) <= indent:
            return False
    return False


def pages() -> list[Path]:
    """The written pages (not the generated reference)."""
    return sorted(p for p in DOCS.rglob("*.md") if GENERATED not in p.parents)


def paths(page_blocks: list[Block]) -> list[list[Block]]:
    """The page read once per tab position: in path k, a tab group contributes its k-th tab (its last, if fewer)."""
    sizes: dict[int, int] = {}
    for b in page_blocks:
        if b.tab is not None:
            sizes[b.tab[0]] = max(sizes.get(b.tab[0], 0), b.tab[1] + 1)
    runs = max(sizes.values(), default=1)
    return [[b for b in page_blocks if b.tab is None or b.tab[1] == min(k, sizes[b.tab[0]] - 1)] for k in range(runs)]


def printed(code: str) -> list[str]:
    """What a Python block says it prints: the ``# text`` after each ``print(...)`` line."""
    return [m[1].strip() for m in re.finditer(r"^\s*print\(.*\)\s+#\s?(.*)$", code, re.M)]


def matches(expected: str, actual: str) -> bool:
    """``expected`` (an output block) against what was printed: line by line, ``...`` standing for any lines."""
    want = [line.rstrip() for line in expected.strip("\n").splitlines()]
    got = [line.rstrip() for line in actual.strip("\n").splitlines()]

    def fit(w: int, g: int) -> bool:
        if w == len(want):
            return g == len(got)
        if want[w] == "...":
            return any(fit(w + 1, k) for k in range(g, len(got) + 1))
        return g < len(got) and _line(want[w], got[g]) and fit(w + 1, g + 1)

    return fit(0, 0)


def _line(want: str, got: str) -> bool:
    """A line matches as written; ``…`` inside it stands for any text (an id, a time)."""
    pattern = ".*".join(re.escape(part) for part in want.split("…"))
    return re.fullmatch(pattern, got) is not None
