"""Clustered nearest-neighbour search (an inverted-file index, as FAISS's IVF-Flat) over the vectors in memory.

An exact search reads every vector: 154 MB per query at 100,000 documents of 384 dimensions, ~12 ms however fast
the product, as memory bandwidth bounds it. Clustered, the vectors are grouped around ``√n`` centroids by spherical
k-means and stored cluster by cluster; a query is compared with the centroids, then with the vectors of the
clusters nearest it only, until those hold ``PROBED_SHARE`` of all vectors (and at least ``PROBED_PER_RESULT`` per
result wanted). The neighbours found are exact scores of real vectors; the approximation is only which clusters are
read, and the share is chosen by measured recall against the exact search (``benchmarks search``).

Below ``CLUSTER_FROM`` vectors an exact search costs a few milliseconds and is what the index does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLUSTER_FROM = 20_000  # vectors; fewer are searched exactly
PROBED_SHARE = 0.1  # of all vectors, read per query
PROBED_PER_RESULT = 8  # vectors read per neighbour asked for, at least
TRAINING_PER_CENTROID = 40  # sample size for k-means, per centroid (FAISS's advice: 30–256)
ITERATIONS = 10
ASSIGN_CHUNK = 8_192  # vectors compared with every centroid at once while assigning (bounds the scores' memory)


@dataclass(frozen=True)
class Clusters:
    """The first ``covered`` rows of a matrix, ordered by cluster: cluster ``c`` is rows ``offsets[c]:offsets[c+1]``."""

    centroids: np.ndarray  # (clusters, dimension), unit rows
    offsets: np.ndarray  # (clusters + 1,)

    @property
    def covered(self) -> int:
        return int(self.offsets[-1])

    def probed_rows(self, query: np.ndarray, k: int) -> list[tuple[int, int]]:
        """The row ranges to read for the ``k`` nearest neighbours of ``query``: the clusters whose centroids are
        nearest it, until they hold enough rows."""
        wanted = max(PROBED_SHARE * self.covered, PROBED_PER_RESULT * k)
        nearest = np.argsort(-(self.centroids @ query))
        sizes = np.diff(self.offsets)[nearest]
        enough = int(np.searchsorted(np.cumsum(sizes), wanted)) + 1
        return [(int(self.offsets[c]), int(self.offsets[c + 1])) for c in nearest[:enough]]


def cluster(matrix: np.ndarray, seed: int = 0) -> tuple[Clusters, np.ndarray]:
    """Cluster the rows of ``matrix`` (unit vectors): the clusters, and the order of the rows that groups them
    (``matrix[order]`` is the matrix the clusters describe). Spherical k-means on a sample, then every row to its
    nearest centroid. Pure numpy; its products release the GIL, so it can run in a thread beside the event loop."""
    rng = np.random.default_rng(seed)
    count = matrix.shape[0]
    k = max(1, round(math.sqrt(count)))
    sample = matrix[rng.choice(count, min(count, k * TRAINING_PER_CENTROID), replace=False)]
    centroids = sample[rng.choice(sample.shape[0], k, replace=False)].copy()
    for _ in range(ITERATIONS):
        centroids = _recentre(sample, np.argmax(sample @ centroids.T, axis=1), centroids)
    assigned = np.concatenate(
        [np.argmax(matrix[i : i + ASSIGN_CHUNK] @ centroids.T, axis=1) for i in range(0, count, ASSIGN_CHUNK)]
    )
    order = np.argsort(assigned, kind="stable")
    offsets = np.searchsorted(assigned[order], np.arange(k + 1))
    return Clusters(centroids, offsets), order


def _recentre(sample: np.ndarray, assigned: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each centroid moved to the normalised mean of its rows (one with no row stays where it was)."""
    order = np.argsort(assigned, kind="stable")
    counts = np.bincount(assigned, minlength=centroids.shape[0])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    held = np.flatnonzero(counts)
    moved = centroids.copy()
    sums = np.add.reduceat(sample[order], starts[held], axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    moved[held] = sums / np.where(norms > 0, norms, 1.0)
    return moved
