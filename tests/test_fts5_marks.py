"""The page's matched words marked by FTS5 in a table of the page alone (agora/store/ops/fts5_marks.py)."""

from __future__ import annotations

import threading

from agora.store.ops.fts5_marks import marks


def test_marks_fall_on_the_words_the_index_matches_and_leave_nothing_behind():
    page = [
        (7, "PaperDigest", "summarization research", "Summarises research papers in plain words for busy readers."),
        (9, "Translator", "translation", "Translates documents between French and German."),
    ]
    found = marks(page, '"summar"* OR "paper"*', "[", "]")
    assert found == [(7, "[PaperDigest]", "[summarization] research", "[Summarises] research [papers] in plain words for busy readers.")]
    # Each call sees its own page only: the rows of the last one were rolled back.
    assert marks([(3, "Café", "", "Über naïve résumé parsing")], '"resum"* OR "cafe"*', "<", ">") == [
        (3, "<Café>", "", "Über naïve <résumé> parsing")
    ]
    assert marks(page, '"zzz"', "[", "]") == []


def test_each_thread_marks_in_its_own_table():
    results: list[list[tuple[int, str, str, str]]] = []
    threads = [threading.Thread(target=lambda i=i: results.append(marks([(i, f"agent{i}", "", "")], f'"agent{i}"', "[", "]"))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [[(i, f"[agent{i}]", "", "")] for i in range(4)]
