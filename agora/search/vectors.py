"""The documents' vectors, held in memory for nearest-neighbour search by dot product.

The vectors live in the database, in their documents' rows; each replica keeps a copy as one float32 matrix and
brings it up to date before a search (vectors stored since its last look). From ``clusters.CLUSTER_FROM`` vectors
the copy is clustered and a query reads only the clusters nearest it (``clusters``); fewer are all read.

Why not the databases' vector engines: sqlite-vec needs SQLite extension loading, which Python's own ``sqlite3`` is
often built without (it is here), and measured 70 ms for one brute-force query over 100,000 384-dimension vectors
against 11 ms for the matrix product; pgvector is not packaged for the PostgreSQL most installs run (Debian 12's
15). Clustering the copy here keeps one code path for both engines. Memory: 1.5 KiB per document for a
384-dimension model, twice that for the seconds a clustering takes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from agora.store import Store
from agora.store.ops import search as search_ops

from .clusters import CLUSTER_FROM, Clusters, cluster

PAGE = 5_000  # vectors read per statement while loading
FRESH_SECONDS = 1.0  # a search looks for new vectors at most this often
RELOAD_SECONDS = 600.0  # rows of deleted or re-embedded documents are dropped by a full reload this often
OVERLAP = timedelta(seconds=5)  # re-read what was stored around the last look (commits land out of order)
RECLUSTER_SHARE = 0.25  # vectors new or changed since the clustering, of those clustered, that make it cluster again


@dataclass
class VectorCopy:
    """One replica's copy: matrix rows (grown by doubling) and their doc_seqs; with ``clusters``, its first rows are
    ordered by cluster, and the rows after them (and the ``loose`` ones within, whose vector changed since) are read
    by every query."""

    matrix: np.ndarray | None = None
    seqs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    rows: dict[int, int] = field(default_factory=dict)  # doc_seq → row of the matrix
    count: int = 0
    clusters: Clusters | None = None
    loose: set[int] = field(default_factory=set)

    def put(self, page: list[tuple[int, bytes]]) -> None:
        vectors = [np.frombuffer(blob, dtype=np.float32) for _, blob in page]
        dimension = vectors[0].shape[0]
        if self.matrix is None or self.matrix.shape[1] != dimension:  # the first vectors, or another model's
            self.matrix = np.zeros((max(1024, len(page)), dimension), dtype=np.float32)
            self.seqs = np.zeros(self.matrix.shape[0], dtype=np.int64)
            self.rows, self.count, self.clusters, self.loose = {}, 0, None, set()
        for (seq, _), vector in zip(page, vectors):
            if vector.shape[0] != dimension:
                continue  # another model's (the stored name says so; this is only a guard)
            row = self.rows.get(seq)
            if row is None:
                if self.count == self.matrix.shape[0]:
                    self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
                    self.seqs = np.concatenate([self.seqs, np.zeros_like(self.seqs)])
                row = self.rows[seq] = self.count
                self.count += 1
            elif self.clusters is not None and row < self.clusters.covered:
                self.loose.add(row)  # its cluster was chosen for its old vector
            self.matrix[row] = vector
            self.seqs[row] = seq

    def wants_clusters(self) -> bool:
        if self.count < CLUSTER_FROM:
            return False
        if self.clusters is None:
            return True
        return self.count - self.clusters.covered + len(self.loose) > RECLUSTER_SHARE * self.clusters.covered

    def clustered(self) -> VectorCopy:
        """A new copy of these vectors, ordered by cluster (seconds at 100,000: run it in a thread)."""
        assert self.matrix is not None
        clusters, order = cluster(self.matrix[: self.count])
        seqs = self.seqs[: self.count][order]
        return VectorCopy(self.matrix[: self.count][order], seqs, {int(s): i for i, s in enumerate(seqs)}, self.count, clusters)

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.matrix is None or not self.count or query.shape[0] != self.matrix.shape[1]:
            return []
        if self.clusters is None:
            ranges = [(0, self.count)]
        else:
            ranges = [*self.clusters.probed_rows(query, k), (self.clusters.covered, self.count)]
        rows = [np.arange(a, b) for a, b in ranges if b > a] + ([np.fromiter(self.loose, np.int64)] if self.loose else [])
        scores = np.concatenate(
            [self.matrix[a:b] @ query for a, b in ranges if b > a] + ([self.matrix[rows[-1]] @ query] if self.loose else [])
        )
        read = np.concatenate(rows)
        taken = min(k + len(self.loose), scores.shape[0])  # a loose row may be read twice (in its cluster, and loose)
        top = np.argpartition(-scores, taken - 1)[:taken]
        found: dict[int, float] = {}
        for i in top[np.argsort(-scores[top])]:
            found.setdefault(int(read[i]), float(scores[i]))
        return [(int(self.seqs[row]), score) for row, score in found.items()][:k]


class VectorIndex:
    def __init__(self, store: Store, now: Callable[[], datetime], embedder: str):
        self._store, self._now, self._embedder = store, now, embedder
        self._copy = VectorCopy()
        self._looked_at: datetime | None = None
        self._checked = 0.0
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return self._copy.count

    async def refresh(self) -> None:
        """Bring the copy up to date (at most every ``FRESH_SECONDS``; a full reload every ``RELOAD_SECONDS``). A
        search that finds a refresh under way uses the copy as it is, once there is one."""
        now = time.monotonic()
        if now - self._checked < FRESH_SECONDS or (self._lock.locked() and self._copy.count):
            return
        async with self._lock:
            if now - self._checked < FRESH_SECONDS:
                return
            full = self._looked_at is None or now - self._loaded > RELOAD_SECONDS
            since = None if full else self._looked_at - OVERLAP  # type: ignore[operator]
            started = self._now()
            if since is not None and ((latest := await self._store.read(search_ops.last_embedded_at)) is None or latest < since):
                self._checked = time.monotonic()  # nothing stored since: no need to read the rows (a scan of them all)
                return
            copy = VectorCopy() if full else self._copy  # a full reload is built beside the copy searches use
            after = 0
            while page := await self._store.read(search_ops.vectors, self._embedder, after, PAGE, since):
                copy.put(page)
                after = page[-1][0]
            if copy.wants_clusters():
                copy = await asyncio.to_thread(copy.clustered)
            self._copy = copy
            if full:
                self._loaded = now
            self._looked_at, self._checked = started, time.monotonic()

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` documents whose vectors are nearest ``query`` (a unit vector): (doc_seq, cosine similarity);
        approximate once the copy is clustered (``clusters``)."""
        return self._copy.nearest(query, k)
