"""The hub's search machinery: the embedder and its queue, the vectors in memory, the index's vocabulary.

Three background jobs per replica:

* **rebuild** — at start, when the stored index was built by another version of the document builder
  (``INDEX_VERSION``), every document is written again from its source, in batches (searches meanwhile see the old
  documents and the new, never none);
* **embed** — documents whose text has no vector yet are embedded in batches and their vectors stored, guarded by
  the text they were made from (a document edited meanwhile keeps waiting for its new one). Every replica may do it:
  two embedding the same document waste one embedding, never store a wrong vector;
* **vocabulary** — the index's terms, reread now and then, for correcting misspelled words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

import numpy as np
from sqlalchemy import Connection

from agora.observability import metrics
from agora.store import Store, tenancy
from agora.store.ops import search as search_ops
from agora.store.ops import system as system_ops

from agora.store.search_documents import embedding_text
from .embedders import MAX_BATCH, Embedder
from .query import Vocabulary
from .vectors import VectorIndex

log = logging.getLogger("agora.search")

INDEX_VERSION = 1  # bump when store/search_documents.py builds documents differently: the next start rebuilds them
INDEX_STATE_KEY = "search_index_version"
REBUILD_BATCH = 500
IDLE_SECONDS = 1.0  # the embedder looks for new documents this often when it found none
VOCABULARY_SECONDS = 60.0
UNKNOWN_SECONDS = 2.0  # a word the vocabulary lacks: read again if documents came or went, at most this often…
UNKNOWN_READ_SHARE = 0.05  # …and at most this share of the time: at 100,000 documents a read takes ~0.3 s
QUERY_CACHE = 1_024  # queries whose vectors are kept (1.5 KiB each at 384 dimensions)


class SearchEngine:
    def __init__(self, store: Store, now: Callable[[], datetime], embedder: Embedder | None):
        self.store, self.now, self.embedder = store, now, embedder
        self.vectors = VectorIndex(store, now, embedder.name) if embedder is not None else None
        self._vocabulary: Vocabulary | None = None
        self._vocabulary_at = 0.0
        self._vocabulary_seconds = 0.0  # what the last read took in the store (not waiting for it: a busy machine)
        self._vocabulary_of: tuple[int, int] | None = None  # search_ops.extent when it was read
        self._vocabulary_lock = asyncio.Lock()
        self._vocabulary_refresh: asyncio.Task[None] | None = None
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()  # the last queries' vectors, oldest first
        self.rebuilt = asyncio.Event()

    # -- for a search ------------------------------------------------------------------------------------------------

    async def vocabulary(self) -> Vocabulary:
        """The index's terms (read at once the first time, then again in the background when older than
        ``VOCABULARY_SECONDS``, or ``UNKNOWN_SECONDS`` after a search met a word it lacks: ``saw_unknown``)."""
        if self._vocabulary is None:
            await self._read_vocabulary()
        elif time.monotonic() - self._vocabulary_at > VOCABULARY_SECONDS:
            self._refresh_vocabulary()
        assert self._vocabulary is not None
        return self._vocabulary

    def saw_unknown(self) -> None:
        """A search met a word the vocabulary lacks: maybe a document holding it came since the last read (one
        edited since waits for the periodic read). Searches with typos come all the time, and a read of a large
        vocabulary stalls the searches beside it (at 100,000 documents ~0.3 s of rows, each taking the GIL), so it
        is read again only when documents came or went, at most every ``UNKNOWN_SECONDS`` and
        ``UNKNOWN_READ_SHARE`` of the time."""
        wait = max(UNKNOWN_SECONDS, self._vocabulary_seconds / UNKNOWN_READ_SHARE)
        if time.monotonic() - self._vocabulary_at > wait:
            self._refresh_vocabulary(unless_unchanged=True)

    def _refresh_vocabulary(self, unless_unchanged: bool = False) -> None:
        if self._vocabulary_refresh is None or self._vocabulary_refresh.done():
            with tenancy.hub_wide():  # the hub's vocabulary, whichever tenant's search met the unknown word
                self._vocabulary_refresh = asyncio.create_task(self._read_vocabulary(unless_unchanged))

    async def _read_vocabulary(self, unless_unchanged: bool = False) -> None:
        async with self._vocabulary_lock:
            self._vocabulary_at = time.monotonic()  # one read at a time, and none again for a while even if it fails
            try:
                if unless_unchanged and await self.store.read(search_ops.extent) == self._vocabulary_of:
                    return
                (terms, self._vocabulary_of), self._vocabulary_seconds = await self.store.read(_timed_vocabulary)
                self._vocabulary = Vocabulary(terms, self._vocabulary_of[0])
            except Exception:  # noqa: BLE001 - corrections wait for the next read; searches go on
                log.exception("reading the search vocabulary failed")
                if self._vocabulary is None:
                    self._vocabulary = Vocabulary({})

    async def embed_query(self, text: str) -> tuple[np.ndarray, bool]:
        """The query's vector, and whether it was embedded now rather than found among the ``QUERY_CACHE`` last
        (the next page of a search, the chat asking again, a console refreshing: the same words again)."""
        assert self.embedder is not None
        vector = self._queries.get(text)
        if vector is not None:
            self._queries.move_to_end(text)
            return vector, False
        vector = (await self.embedder.embed([text]))[0]
        self._queries[text] = vector
        if len(self._queries) > QUERY_CACHE:
            self._queries.popitem(last=False)
        return vector, True

    # -- background --------------------------------------------------------------------------------------------------

    def start(self) -> list[asyncio.Task[None]]:
        tasks = [asyncio.create_task(self._rebuild(), name="search-rebuild")]
        if self.embedder is not None:
            tasks.append(asyncio.create_task(self._embed(), name="search-embed"))
        return tasks

    async def close(self) -> None:
        if self.embedder is not None:
            await self.embedder.close()

    async def _rebuild(self) -> None:
        try:
            if await self.store.read(system_ops.get, INDEX_STATE_KEY) != INDEX_VERSION:
                started = time.monotonic()
                written = 0
                for kind in ("service", "listing", "agent"):
                    after = ""
                    while (last := await self.store.write(search_ops.rebuild_page, kind, after, REBUILD_BATCH, self.now())) is not None:
                        after, written = last, written + REBUILD_BATCH
                await self.store.write(system_ops.put, INDEX_STATE_KEY, INDEX_VERSION, self.now())
                log.info("search index rebuilt", extra={"documents": written, "seconds": round(time.monotonic() - started, 2)})
        except Exception:  # noqa: BLE001 - searches still answer from the documents there are; the next start retries
            log.exception("search index rebuild failed")
        finally:
            self.rebuilt.set()

    async def _embed(self) -> None:
        assert self.embedder is not None
        name = self.embedder.name
        with contextlib.suppress(Exception):
            if forgotten := await self.store.write(search_ops.forget_other_embedders, name):
                log.info("search documents queued for the new embedder", extra={"documents": forgotten, "embedder": name})
        while True:
            try:
                pending = await self.store.read(search_ops.unembedded, MAX_BATCH)
                if not pending:
                    await asyncio.sleep(IDLE_SECONDS)
                    continue
                started = time.perf_counter()
                vectors = await self.embedder.embed([embedding_text(d) for d in pending])
                metrics.SEARCH_EMBEDDINGS.inc(len(pending))
                metrics.SEARCH_EMBED_SECONDS.labels("documents").observe(time.perf_counter() - started)
                rows = [(d["doc_seq"], d["text_hash"], v.astype(np.float32).tobytes()) for d, v in zip(pending, vectors)]
                await self.store.write(search_ops.store_vectors, name, rows, self.now())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an embedder that is down: lexical search goes on; try again later
                log.warning("embedding search documents failed; retrying", extra={"reason": str(exc)[:300]})
                await asyncio.sleep(5 * IDLE_SECONDS)


def _timed_vocabulary(conn: Connection) -> tuple[tuple[dict[str, int], tuple[int, int]], float]:
    started = time.perf_counter()
    return search_ops.vocabulary(conn), time.perf_counter() - started
