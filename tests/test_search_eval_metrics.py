"""The search benchmark's quality figures (benchmarks/search_eval/metrics.py) on rankings worked out by hand."""

from __future__ import annotations

import math

import pytest

from benchmarks.search_eval.metrics import best_recall_at, ndcg_at, recall_at

JUDGED = {"a": 3, "b": 2, "c": 1}


def test_ndcg_is_one_for_the_ideal_ranking_and_counts_what_is_left_out():
    assert ndcg_at(["a", "b", "c", "x"], JUDGED, 10) == pytest.approx(1.0)
    ideal = 3 + 2 / math.log2(3) + 1 / 2
    assert ndcg_at(["x", "a"], JUDGED, 10) == pytest.approx((3 / math.log2(3)) / ideal)  # b and c missing, a second
    assert ndcg_at(["c", "b", "a"], JUDGED, 2) == pytest.approx((1 + 2 / math.log2(3)) / (3 + 2 / math.log2(3)))
    assert ndcg_at(["x", "y"], JUDGED, 10) == 0.0


def test_recall_counts_every_graded_entry_and_its_best_is_below_one_when_more_are_relevant_than_k():
    assert recall_at(["c", "x", "a"], JUDGED, 5) == pytest.approx(2 / 3)
    assert recall_at(["x", "x", "x", "x", "x", "a"], JUDGED, 5) == 0.0  # past k
    assert best_recall_at(JUDGED, 2) == pytest.approx(2 / 3) and best_recall_at(JUDGED, 5) == 1.0


def test_a_query_with_nothing_relevant_has_no_figure():
    with pytest.raises(ValueError):
        ndcg_at(["a"], {"a": 0}, 10)
    with pytest.raises(ValueError):
        recall_at(["a"], {}, 5)
