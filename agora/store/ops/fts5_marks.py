"""Matched words marked in a page of documents by FTS5 itself, in a table of those documents alone.

Marking the page in ``search_fts`` (``highlight``/``snippet`` with ``MATCH … AND rowid IN (…)``) makes FTS5 read the
whole posting list of every query term, however few rows it keeps: ~14 ms for a six-word query at 100,000 documents.
A thread's own in-memory FTS5 table with the same tokenizer holds the page's documents for one statement (inserted,
marked, rolled back): the same marks, for the cost of tokenizing ten documents.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable

# search_fts's tokenizer (migration 0023): the marks must fall where its matches do
TOKENIZER = "porter unicode61 remove_diacritics 2"
SNIPPET_TOKENS = 24

_local = threading.local()


def _table() -> sqlite3.Connection:
    db: sqlite3.Connection | None = getattr(_local, "db", None)
    if db is None:
        db = sqlite3.connect(":memory:")
        db.execute(f"CREATE VIRTUAL TABLE page USING fts5(title, tags, body, tokenize='{TOKENIZER}')")
        _local.db = db
    return db


def marks(documents: Iterable[tuple[int, str, str, str]], query: str, open_: str, close: str) -> list[tuple[int, str, str, str]]:
    """For each of ``documents`` (rowid, title, tags, body) that ``query`` (FTS5 syntax) matches: its title and tags
    with the matched terms between ``open_`` and ``close``, and the best fragment of its body, marked."""
    db = _table()
    try:
        db.executemany("INSERT INTO page(rowid, title, tags, body) VALUES (?, ?, ?, ?)", documents)
        return db.execute(
            "SELECT rowid, highlight(page, 0, ?1, ?2), highlight(page, 1, ?1, ?2), "
            f"snippet(page, 2, ?1, ?2, '…', {SNIPPET_TOKENS}) FROM page WHERE page MATCH ?3",
            (open_, close, query),
        ).fetchall()
    finally:
        db.rollback()
