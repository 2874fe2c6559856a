"""The documents' vectors, held in memory for exact nearest-neighbour search by dot product.

The vectors live in the database, in their documents' rows; each replica keeps a copy as one float32 matrix and
brings it up to date before a search (vectors stored since its last look). Why not the databases' vector engines:
sqlite-vec needs SQLite extension loading, which Python's own ``sqlite3`` is often built without (it is here), and
measured 70 ms for one brute-force query over 100,000 384-dimension vectors against 11 ms for the matrix product;
pgvector is not packaged for the PostgreSQL most installs run (Debian 12's 15). Exact search also never misses a
neighbour an approximate index would. Memory: 1.5 KiB per document for a 384-dimension model.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from agora.store import Store
from agora.store.ops import search as search_ops

PAGE = 5_000  # vectors read per statement while loading
FRESH_SECONDS = 1.0  # a search looks for new vectors at most this often
RELOAD_SECONDS = 600.0  # rows of deleted or re-embedded documents are dropped by a full reload this often
OVERLAP = timedelta(seconds=5)  # re-read what was stored around the last look (commits land out of order)


class VectorIndex:
    def __init__(self, store: Store, now: Callable[[], datetime], embedder: str):
        self._store, self._now, self._embedder = store, now, embedder
        self._seqs = np.zeros(0, dtype=np.int64)
        self._matrix: np.ndarray | None = None
        self._rows: dict[int, int] = {}  # doc_seq → row of the matrix
        self._count = 0
        self._looked_at: datetime | None = None
        self._checked = 0.0
        self._loaded = 0.0
        self._lock = asyncio.Lock()

    def __len__(self) -> int:
        return self._count

    async def refresh(self) -> None:
        """Bring the copy up to date (at most every ``FRESH_SECONDS``; a full reload every ``RELOAD_SECONDS``)."""
        now = time.monotonic()
        if now - self._checked < FRESH_SECONDS:
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
            if full:
                self._seqs, self._matrix, self._rows, self._count = np.zeros(0, dtype=np.int64), None, {}, 0
                self._loaded = now
            after = 0
            while page := await self._store.read(search_ops.vectors, self._embedder, after, PAGE, since):
                self._put(page)
                after = page[-1][0]
            self._looked_at, self._checked = started, time.monotonic()

    def _put(self, page: list[tuple[int, bytes]]) -> None:
        vectors = [np.frombuffer(blob, dtype=np.float32) for _, blob in page]
        dimension = vectors[0].shape[0]
        if self._matrix is None or self._matrix.shape[1] != dimension:
            self._matrix = np.zeros((max(1024, len(page)), dimension), dtype=np.float32)
            self._seqs = np.zeros(self._matrix.shape[0], dtype=np.int64)
            self._rows, self._count = {}, 0
        for (seq, _), vector in zip(page, vectors):
            if vector.shape[0] != dimension:
                continue  # another model's (the stored name says so; this is only a guard)
            row = self._rows.get(seq)
            if row is None:
                if self._count == self._matrix.shape[0]:
                    self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
                    self._seqs = np.concatenate([self._seqs, np.zeros_like(self._seqs)])
                row = self._rows[seq] = self._count
                self._count += 1
            self._matrix[row] = vector
            self._seqs[row] = seq

    def nearest(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` documents whose vectors are nearest ``query`` (a unit vector): (doc_seq, cosine similarity)."""
        if self._matrix is None or not self._count or query.shape[0] != self._matrix.shape[1]:
            return []
        scores = self._matrix[: self._count] @ query
        k = min(k, self._count)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(self._seqs[i]), float(scores[i])) for i in top]
