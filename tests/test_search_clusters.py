"""The clustered vector copy (agora/search/clusters.py, vectors.py): what it finds against an exact search, and the
vectors stored after it was clustered."""

from __future__ import annotations

import numpy as np

from agora.search.clusters import CLUSTER_FROM, cluster
from agora.search.vectors import VectorCopy

DIMENSION = 48
TOPICS = 400


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def topical_vectors(count: int, rng: np.random.Generator) -> np.ndarray:
    """Vectors as documents' are: near one of many topics (cosine ~0.8), not spread evenly over the sphere."""
    topics = unit(rng.standard_normal((TOPICS, DIMENSION)))
    return unit(topics[rng.integers(0, TOPICS, count)] + 0.1 * rng.standard_normal((count, DIMENSION)))


def copy_of(matrix: np.ndarray, first_seq: int = 1) -> VectorCopy:
    copy = VectorCopy()
    copy.put([(first_seq + i, row.tobytes()) for i, row in enumerate(matrix)])
    return copy


def exact(matrix: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return [int(i) + 1 for i in np.argsort(-(matrix @ query))[:k]]


def test_kmeans_puts_every_vector_in_one_cluster_of_its_order():
    rng = np.random.default_rng(1)
    matrix = topical_vectors(5_000, rng)
    clusters, order = cluster(matrix)
    assert sorted(order.tolist()) == list(range(5_000))
    assert clusters.covered == 5_000 and clusters.offsets[0] == 0
    assert np.all(np.diff(clusters.offsets) >= 0)
    assert clusters.centroids.shape == (71, DIMENSION)  # √5000 ≈ 71
    ordered = matrix[order]
    for c in rng.choice(71, 10, replace=False):  # each row of a cluster is nearest its own centroid
        rows = ordered[clusters.offsets[c] : clusters.offsets[c + 1]]
        if len(rows):
            assert np.all(np.argmax(rows @ clusters.centroids.T, axis=1) == c)


def test_a_clustered_copy_finds_what_an_exact_search_finds():
    rng = np.random.default_rng(2)
    matrix = topical_vectors(CLUSTER_FROM + 5_000, rng)
    copy = copy_of(matrix)
    assert copy.wants_clusters() and copy.clusters is None
    clustered = copy.clustered()
    assert clustered.clusters is not None and not clustered.wants_clusters()
    recalls = []
    for query in unit(matrix[rng.choice(len(matrix), 40)] + 0.05 * rng.standard_normal((40, DIMENSION))):
        truth = exact(matrix, query, 40)  # (a topic holds ~60: past them, the nearest are noise, not neighbours)
        found = clustered.nearest(query, 40)
        assert [s for s, _ in found] == [s for s, _ in sorted(found, key=lambda f: -f[1])]
        assert found[0][0] == truth[0]
        scores = dict(found)
        assert all(abs(scores[s] - float(matrix[s - 1] @ query)) < 1e-5 for s in scores)  # exact scores of real rows
        recalls.append(len(set(truth) & set(scores)) / 40)
    assert np.mean(recalls) >= 0.95, np.mean(recalls)


def test_vectors_stored_after_the_clustering_are_found_once_and_trigger_a_new_one():
    rng = np.random.default_rng(3)
    matrix = topical_vectors(CLUSTER_FROM, rng)
    clustered = copy_of(matrix).clustered()
    new = unit(rng.standard_normal((3, DIMENSION)))
    clustered.put([(CLUSTER_FROM + 1, new[0].tobytes())])  # a new document: after the clustered rows
    clustered.put([(7, new[1].tobytes())])  # document 7 embedded again: its cluster was chosen for its old vector
    for seq, vector in ((CLUSTER_FROM + 1, new[0]), (7, new[1])):
        found = clustered.nearest(vector, 50)
        assert found[0][0] == seq and abs(found[0][1] - 1.0) < 1e-5
        assert len({s for s, _ in found}) == len(found) == 50  # document 7 not twice, though read twice
    assert not clustered.wants_clusters()
    more = topical_vectors(CLUSTER_FROM // 4, rng)
    clustered.put([(CLUSTER_FROM + 2 + i, row.tobytes()) for i, row in enumerate(more)])
    assert clustered.wants_clusters()  # a quarter more vectors than were clustered


def test_below_the_threshold_the_search_is_exact():
    rng = np.random.default_rng(4)
    matrix = topical_vectors(CLUSTER_FROM - 1, rng)
    copy = copy_of(matrix)
    assert not copy.wants_clusters()
    query = matrix[123]
    assert [s for s, _ in copy.nearest(query, 100)] == exact(matrix, query, 100)
