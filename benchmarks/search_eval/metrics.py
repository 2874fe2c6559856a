"""Ranking quality against the graded judgments of ``queries.json``: recall@k and nDCG@k.

A judgment's grade (3, 2 or 1; an entry not judged is 0) is its gain. nDCG@k is the ranking's discounted gain
(gain / log2(rank + 1)) over the ideal ranking's, the ideal being every judged entry in descending grade, so it reads
1.0 for a perfect top k and accounts for the entries the ranking left out. recall@k is the share of the judged
entries (any grade) in the top k. A query with no judged entry has neither figure: the caller leaves it out of means.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _dcg(gains: Sequence[int]) -> float:
    return sum(gain / math.log2(rank + 1) for rank, gain in enumerate(gains, start=1))


def ndcg_at(ranked: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """nDCG of the first ``k`` of ``ranked`` (entry ids, best first); ``judgments`` must hold a grade above 0."""
    ideal = _dcg(sorted((g for g in judgments.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        raise ValueError("nDCG is undefined for a query without relevant entries")
    return _dcg([judgments.get(entry, 0) for entry in ranked[:k]]) / ideal


def recall_at(ranked: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    """Share of the entries graded above 0 found in the first ``k`` of ``ranked``."""
    relevant = {entry for entry, grade in judgments.items() if grade > 0}
    if not relevant:
        raise ValueError("recall is undefined for a query without relevant entries")
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def best_recall_at(judgments: Mapping[str, int], k: int) -> float:
    """The highest recall@k any ranking reaches (below 1 when more than ``k`` entries are relevant)."""
    relevant = sum(1 for grade in judgments.values() if grade > 0)
    return min(k, relevant) / relevant
