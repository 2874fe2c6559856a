"""``agora.marketplace.search`` and the ``q`` of the discovery tools: one ranking for all of them.

1. The query is read (``search/query.py``): constraints said in words, the words left, corrected against the index.
2. Two retrievers each give their best ``CANDIDATES``: the database's full text (BM25 on SQLite, ``ts_rank_cd`` on
   PostgreSQL) with the hard filters in SQL, and — with an embedder — the nearest vectors.
3. Their rankings are fused by reciprocal rank (a document's score is the sum of 1 / (60 + its rank) in each), which
   needs no calibration between BM25 and cosine scores.
4. The candidates are read back with the filters and the caller's visibility (the database, not the candidate
   lists, decides what the caller may see), then adjusted: preferred languages and regions said in words, and the
   measured performance of listings (success rate × availability, once enough tasks were measured).
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from agora.core.context import CallContext
from agora.observability import metrics
from agora.search.embedders import MAX_BATCH
from agora.search.query import ParsedQuery, match_terms, parse, plain
from agora.store.ops import marketplace as market_ops
from agora.store.ops import search as search_ops
from agora.store.ops.pagination import decode_cursor, encode_cursor
from agora.store.schema import agents, market_listings
from agora_sdk.errors import InvalidArgument
from agora_sdk.wire import search as w

from .marketplace import marketplace_info

CANDIDATES = 200  # from each retriever
RRF_K = 60
# A document that states the language or region a query prefers is moved by the first factor, one that states
# another by the second.
PREFERRED_FACTOR, OTHER_FACTOR = 1.3, 0.6
MIN_MEASURED_TASKS = 10  # performance moves a listing only once this many of its tasks were measured
MAX_OFFSET = 1_000  # how deep pages go (a person refines the query long before)
# A document found by meaning alone must be at least this close to the query (cosine): nearest neighbours always
# exist, and below this (all-MiniLM-L6-v2 puts unrelated texts at 0.0-0.2) they are not about the query at all.
MIN_SIMILARITY = 0.25


@dataclass
class Ranked:
    """One search's outcome, before it is shaped for a tool's answer."""

    hits: list[tuple[dict[str, Any], float, w.Why]]  # (document, score, why), best first, the requested page
    parsed: ParsedQuery
    corrections: dict[str, str]
    mode: w.SearchMode
    semantic: str
    next_offset: int | None
    embedding_ms: float | None
    total: int  # documents that matched (after filters), all pages
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # source rows of the page, by document ref_id


async def search(ctx: CallContext, req: w.Search) -> w.SearchResults:
    ranked = await rank(ctx, req)
    hits = [_hit(doc, score, why, ranked.sources.get(doc["ref_id"])) for doc, score, why in ranked.hits]
    c = ranked.parsed.constraints
    explicit_price = req.max_price if req.max_price is not None else c.max_price
    interpretation = w.Interpretation(
        words=ranked.parsed.words, corrections=ranked.corrections, understood=c.understood, max_price=explicit_price,
        pricing_models=[m.value for m in req.pricing_models] or c.pricing_models,
        regions=[req.region] if req.region else c.regions, languages=list(req.languages) or c.languages,
        min_success_rate=req.min_success_rate if req.min_success_rate is not None else c.min_success_rate,
        min_rating=_min_rating(req, c), sort=_sort(req, c),
    )  # fmt: skip
    return w.SearchResults(
        query=req.q, mode=ranked.mode, semantic=ranked.semantic, interpretation=interpretation, results=hits,
        next_cursor=encode_cursor(ranked.next_offset) if ranked.next_offset is not None else None,
        embedding_ms=ranked.embedding_ms,
    )  # fmt: skip


async def rank(ctx: CallContext, req: w.Search) -> Ranked:
    """Rank what the caller may see for ``req``; the page ``req.cursor`` and ``req.limit`` ask for."""
    offset = _offset(req.cursor)
    engine = ctx.hub.search
    parsed = parse(req.q) if req.interpret else plain(req.q)
    c = parsed.constraints
    filters = search_ops.Filters(
        kinds=tuple(k.value for k in req.kinds),
        category=req.category,
        capabilities=tuple(req.capabilities),
        max_price=float(req.max_price if req.max_price is not None else c.max_price) if (req.max_price is not None or c.max_price is not None) else None,
        pricing_models=tuple(m.value for m in req.pricing_models) or tuple(c.pricing_models),
        regions=(req.region,) if req.region else (),
        languages=tuple(req.languages),
    )
    p = ctx.principal
    viewer = search_ops.Viewer(p.tenant_id, sees_all=p.is_admin)
    mode, semantic = _mode(ctx, req.mode)
    vocabulary = await engine.vocabulary()
    terms = match_terms(parsed.words, ctx.store.dialect, vocabulary)
    if terms.unknown or terms.corrections:
        engine.saw_unknown()  # (a correction may be a new word's misreading: "zqab" for the just-indexed "zqba")

    async def by_words() -> list[tuple[int, float]]:
        if mode is w.SearchMode.semantic:
            return []
        return await ctx.store.read(search_ops.lexical, vocabulary.selective(terms.stems), [], filters, viewer, CANDIDATES)

    async def by_meaning() -> tuple[list[tuple[int, float]], float | None]:
        """The nearest vectors, and the ms embedding the query took."""
        if mode is w.SearchMode.lexical or engine.vectors is None:
            return [], None
        started = time.perf_counter()
        query_vector, embedded_now = await engine.embed_query(parsed.text or req.q)
        embedding_ms = 0.0  # its vector was kept from an earlier search: no time went into embedding it
        if embedded_now:
            embedding_ms = round((time.perf_counter() - started) * 1000, 3)
            metrics.SEARCH_EMBED_SECONDS.labels("query").observe(embedding_ms / 1000)
        await engine.vectors.refresh()
        # Vectors are filtered after the search: three times as many when filters or visibility may drop most of them
        # (each candidate is read back and scored: 600 instead of 200 cost a search ~20 ms at 100,000 documents).
        wanted = CANDIDATES if viewer.sees_all and not filters.narrow else CANDIDATES * 3
        return [(seq, sim) for seq, sim in engine.vectors.nearest(query_vector, wanted) if sim >= MIN_SIMILARITY], embedding_ms

    # The full-text read runs in the store (its thread, or PostgreSQL) while the query is embedded and its vectors
    # compared here: a hybrid search takes the longer of the two, not their sum.
    lexical, (nearest, embedding_ms) = await asyncio.gather(by_words(), by_meaning())
    metrics.SEARCH_QUERIES.labels(mode.value).inc()
    fused = _fuse(lexical, nearest)
    min_success = req.min_success_rate if req.min_success_rate is not None else c.min_success_rate
    min_rating, sort = _min_rating(req, c), _sort(req, c)
    rated = min_rating is not None or req.min_reputation is not None or sort is not w.SearchSort.relevance
    languages = () if req.languages else tuple(c.languages)
    regions = () if req.region else tuple(c.regions)

    def op(conn: Connection) -> tuple[list[tuple[dict[str, Any], float, w.Why]], int, dict[str, dict[str, Any]], int | None]:
        docs = search_ops.candidates(conn, list(fused), filters, viewer)
        similarity = dict(nearest)
        lexical_rank = ranks(lexical)
        semantic_rank = {seq: i + 1 for i, (seq, _) in enumerate(nearest) if seq in docs and _fresh(docs[seq])}
        listing_ids = [d["ref_id"] for d in docs.values() if d["kind"] == "listing"]
        figures = market_ops.performance(conn, listing_ids) if listing_ids else {}
        standing = market_ops.standing(conn, listing_ids) if rated else {}
        scored: list[tuple[dict[str, Any], float, list[str]]] = []
        for seq, doc in docs.items():
            if seq not in lexical_rank and seq not in semantic_rank:
                continue  # only a stale vector brought it: its text changed since
            score = fused[seq] if seq in lexical_rank else 1 / (RRF_K + semantic_rank[seq])
            adjustments: list[str] = []
            score *= _preference(doc, "languages", languages, adjustments) * _preference(doc, "region", regions, adjustments)
            if doc["kind"] == "listing":
                factor = _performance(figures.get(doc["ref_id"]), min_success, adjustments)
                if factor is None:
                    continue
                score *= factor
            elif min_success is not None or rated:
                continue  # only listings have a measured success rate, a rating and a reputation
            if rated and not _stands(standing.get(doc["ref_id"]), min_rating, req.min_reputation):
                continue
            scored.append((doc, score, adjustments))
        # Equal relevance (to rounding) reads best in name order: the same words in every name are the same score.
        # Best rated (or reputed) first, when asked, relevance then breaking ties.
        first = {w.SearchSort.rating: 0, w.SearchSort.reputation: 1}.get(sort)
        scored.sort(key=lambda item: (
            -standing[item[0]["ref_id"]][first] if first is not None else 0, -round(item[1], 12), item[0]["title"].lower(), item[0]["doc_seq"],
        ))  # fmt: skip
        shown = scored[offset : offset + req.limit]
        whole = search_ops.documents(conn, [doc["doc_seq"] for doc, _, _ in shown])
        page = []
        for doc, score, adjustments in shown:
            seq = doc["doc_seq"]
            if seq not in whole:
                continue  # removed since it was ranked (on PostgreSQL each statement of a read sees the latest commits)
            why = w.Why(
                matched_fields=[], highlights=[], lexical_rank=lexical_rank.get(seq), semantic_rank=semantic_rank.get(seq),
                similarity=round(similarity[seq], 4) if seq in semantic_rank else None, adjustments=adjustments,
            )  # fmt: skip
            page.append((whole[seq], score, why))
        _highlight(conn, page, terms.stems)
        waiting = len(search_ops.unembedded(conn, MAX_BATCH)) if embedding_ms is not None else None
        return page, len(scored), _sources(conn, page, p.tenant_id, figures, ctx.clock.now()), waiting

    page, total, sources, waiting = await ctx.store.read(op)
    if waiting is not None:
        semantic += f", {len(engine.vectors or ())} documents embedded, {_waiting(waiting)} waiting for their vector"
    more = offset + req.limit < min(total, MAX_OFFSET)
    return Ranked(page, parsed, terms.corrections, mode, semantic, offset + req.limit if more else None, embedding_ms, total, sources)


async def ranked_ids(ctx: CallContext, q: str, kind: w.SearchKind, limit: int, cursor: str | None, **filters: Any) -> tuple[list[str], str | None, int]:
    """For a discovery tool's ``q``: the ids of one kind of thing, ranked, a page at a time, and how many matched."""
    ranked = await rank(ctx, w.Search(q=q, kinds=[kind], limit=min(limit, 100), cursor=cursor, **filters))
    next_cursor = encode_cursor(ranked.next_offset) if ranked.next_offset is not None else None
    return [doc["ref_id"] for doc, _, _ in ranked.hits], next_cursor, ranked.total


def _offset(cursor: str | None) -> int:
    key = decode_cursor(cursor)
    if key is None:
        return 0
    if not key.isdigit() or int(key) > MAX_OFFSET:
        raise InvalidArgument("cursor is not one this hub issued", details={"field": "cursor"})
    return int(key)


def _mode(ctx: CallContext, asked: w.SearchMode) -> tuple[w.SearchMode, str]:
    engine = ctx.hub.search
    if engine.embedder is None:
        if asked in (w.SearchMode.semantic, w.SearchMode.hybrid):
            raise InvalidArgument(
                f"mode {asked.value} needs an embedder, and this hub has none (agora serve --embedder local|openai)",
                details={"field": "mode"},
            )
        return w.SearchMode.lexical, "off: no embedder is configured on this hub, so the search is lexical only"
    if asked is w.SearchMode.lexical:
        return asked, f"off: lexical asked for (embedder {engine.embedder.name})"
    mode = w.SearchMode.hybrid if asked is w.SearchMode.auto else asked
    return mode, f"on: {engine.embedder.name}"


def _waiting(count: int) -> str:
    """Documents without a vector for their text as this search saw them: once none, searches from
    ``vectors.FRESH_SECONDS`` later search every vector."""
    return "none" if not count else f"{count} or more" if count >= MAX_BATCH else str(count)


def ranks(ranking: list[tuple[int, float]]) -> dict[int, int]:
    """Each document's place in a ranking (best first), equal scores sharing a place: documents the engine cannot
    tell apart must not be told apart by the order it happened to list them in."""
    places: dict[int, int] = {}
    for i, (seq, score) in enumerate(ranking):
        places[seq] = places[ranking[i - 1][0]] if i and score == ranking[i - 1][1] else i + 1
    return places


def _fuse(lexical: list[tuple[int, float]], nearest: list[tuple[int, float]]) -> dict[int, float]:
    """Reciprocal rank fusion of the two rankings (a ranking that did not run adds nothing)."""
    fused: dict[int, float] = {}
    for ranking in (lexical, nearest):
        for seq, rank in ranks(ranking).items():
            fused[seq] = fused.get(seq, 0.0) + 1 / (RRF_K + rank)
    return fused


def _fresh(doc: dict[str, Any]) -> bool:
    return doc["embedded_hash"] is not None and doc["embedded_hash"] == doc["text_hash"]


def _preference(doc: dict[str, Any], column: str, wanted: tuple[str, ...], adjustments: list[str]) -> float:
    """Said in words, languages and regions are preferences. Regions are alternatives ("in Europe"): a document in one
    of them moves up. Languages are all needed ("French to English", "French, German and Polish"): a document moves up
    by the share of them it states. One that states none of them moves down; one that says nothing stays."""
    if not wanted:
        return 1.0
    stated = doc[column].split() if column == "languages" else ([doc[column]] if doc[column] else [])
    if not stated:
        return 1.0
    met = [want for want in wanted if any(s == want or (want.endswith("-") and s.startswith(want)) for s in stated)]
    share = len(met) / len(wanted) if column == "languages" else float(bool(met))
    if 0 < share < 1:
        adjustments.append(f"{column} partly match: {', '.join(met)} of {', '.join(wanted)}")
    else:
        adjustments.append(f"{column} {'match' if share else 'differ'}: {', '.join(wanted)}")
    return PREFERRED_FACTOR * share + OTHER_FACTOR * (1 - share)


def _min_rating(req: w.Search, c: Any) -> float | None:
    return req.min_rating if req.min_rating is not None else c.min_rating


def _sort(req: w.Search, c: Any) -> w.SearchSort:
    return req.sort if req.sort is not w.SearchSort.relevance or c.sort is None else w.SearchSort(c.sort)


def _stands(standing: tuple[float, float] | None, min_rating: float | None, min_reputation: float | None) -> bool:
    """Whether a listing's (rating, reputation) clears the floors asked for."""
    if standing is None:
        return False
    rating, reputation = standing
    return (min_rating is None or rating >= min_rating) and (min_reputation is None or reputation >= min_reputation)


def _performance(figures: dict[str, Any] | None, min_success: float | None, adjustments: list[str]) -> float | None:
    """A listing's factor from its measured success rate and availability (None: filtered out by ``min_success``)."""
    if figures is None:
        return 1.0 if min_success is None else None
    finished = figures["completed"] + figures["failed"]
    rate = figures["completed"] / finished if finished else None
    if min_success is not None and (rate is None or rate < min_success):
        return None
    if finished < MIN_MEASURED_TASKS or rate is None:
        return 1.0
    up = figures["running"] + figures["down"]
    availability = figures["running"] / up if up else 1.0
    quality = rate * availability
    adjustments.append(f"measured success {rate:.0%}, availability {availability:.0%} over {finished} tasks")
    return 0.7 + 0.6 * quality


def _highlight(conn: Connection, page: list[tuple[dict[str, Any], float, w.Why]], stems: list[str]) -> None:
    marked = search_ops.highlights(conn, [doc for doc, _, _ in page], stems, [])
    for doc, _, why in page:
        for field_name, column in (("name", "title"), ("tags", "tags"), ("description", "body")):
            text = marked.get(doc["doc_seq"], {}).get(column, "")
            if search_ops.HIGHLIGHT_OPEN in text:
                why.matched_fields.append(field_name)
                why.highlights.append(_spans(field_name, text))


def _spans(field_name: str, marked: str) -> w.Highlight:
    """Marked text (the engine's markers around matched words) as plain text and character spans."""
    plain: list[str] = []
    spans: list[w.Span] = []
    length = 0
    start = 0
    for part in marked.replace(search_ops.HIGHLIGHT_CLOSE, search_ops.HIGHLIGHT_OPEN + "\x00").split(search_ops.HIGHLIGHT_OPEN):
        if part.startswith("\x00"):
            spans.append(w.Span(start=start, end=length))
            part = part[1:]
        else:
            start = length + 0
        plain.append(part)
        length += len(part)
    return w.Highlight(field=field_name, text="".join(plain), spans=spans)


def _sources(
    conn: Connection, page: list[tuple[dict[str, Any], float, w.Why]], tenant: str | None, figures: dict[str, dict[str, Any]], now: datetime
) -> dict[str, dict[str, Any]]:
    """What the hits show beyond their documents: an agent's status, a listing's availability and performance (from
    ``figures``, read for ranking)."""
    agent_ids = [doc["ref_id"] for doc, _, _ in page if doc["kind"] == "agent"]
    listing_ids = [doc["ref_id"] for doc, _, _ in page if doc["kind"] == "listing"]
    found: dict[str, dict[str, Any]] = {}
    if agent_ids:
        rows = conn.execute(select(agents.c.agent_id, agents.c.status, agents.c.last_heartbeat).where(agents.c.agent_id.in_(agent_ids)))
        found |= {r.agent_id: {"status": r.status, "last_heartbeat": r.last_heartbeat} for r in rows}
    if listing_ids:
        l = market_listings.c
        rows = conn.execute(select(l.listing_id, l.status, l.max_instances, l.pricing, l.rating, l.rating_count, l.reputation).where(l.listing_id.in_(listing_ids))).mappings()
        counts = market_ops.instance_counts(conn, listing_ids, tenant)
        found |= {r["listing_id"]: {"info": marketplace_info(r, counts, figures[r["listing_id"]], now)} for r in rows}
    return found


def _hit(doc: dict[str, Any], score: float, why: w.Why, source: dict[str, Any] | None) -> w.SearchHit:
    priced = doc["price"] is not None
    return w.SearchHit(
        kind=w.SearchKind(doc["kind"]), id=doc["ref_id"], name=doc["title"], description=doc["body"],
        category=doc["category"], tags=doc["tags"].split(),
        pricing=w.PriceSummary(model=doc["pricing_model"], price=Decimal(str(doc["price"])), currency=doc["currency"]) if priced else None,
        region=doc["region"], languages=doc["languages"].split(), score=round(score, 6), why=why,
        status=(source or {}).get("status"), last_heartbeat=(source or {}).get("last_heartbeat"),
        marketplace_info=(source or {}).get("info"),
    )  # fmt: skip
