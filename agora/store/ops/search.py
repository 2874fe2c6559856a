"""The search index's rows (``search_documents``) and the engines' full-text queries over them.

Documents are written by the operations that change their sources, in the same transaction (``put``, ``remove``,
``set_public``). Full text is the engine's own: SQLite's FTS5 table ``search_fts`` (kept by triggers, ranked by
BM25 with the name above the tags above the description) and PostgreSQL's generated ``tsv`` column under a GIN index
(ranked by ``ts_rank_cd`` with the same weighting). A query reaches here as stems already corrected and expanded
(``agora/search/query.py``); each engine matches any of them and ranks by how many, how rare and where.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, column, delete, func, literal, literal_column, or_, select, table, text, update

from ..search_documents import agent_document, listing_document, service_document

from ..prepared import Prepared
from ..schema import agents, market_listings, services
from ..schema import search_documents as docs
from ..base import point_read
from . import fts5_marks
from .dialect import one_of, upsert_insert

_FTS = table("search_fts", column("rowid"))  # SQLite's FTS5 table (made by the migration, not in the metadata)
HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE = "\x02", "\x03"  # never in indexed text (control characters); turned into spans
_INDEXED = ("tenant_id", "public", "title", "tags", "body", "category", "price", "pricing_model", "currency", "region",
            "languages", "updated_at", "text_hash")  # fmt: skip


def put(conn: Connection, doc: dict[str, Any]) -> None:
    """Write a document (new, or in place of the one of the same kind and id). A new text makes its vector stale
    (``embedded_hash`` NULL: the embedder's queue); the old vector stays until the new one replaces it, and the search
    never trusts a vector whose ``embedded_hash`` is not the document's ``text_hash``."""
    stmt = upsert_insert(conn, docs).values(**doc)
    same_text = stmt.excluded.text_hash == docs.c.text_hash
    changes = {k: stmt.excluded[k] for k in _INDEXED} | {"embedded_hash": case((same_text, docs.c.embedded_hash), else_=None)}
    conn.execute(stmt.on_conflict_do_update(index_elements=["kind", "ref_id"], set_=changes))


def remove(conn: Connection, kind: str, ref_id: str) -> None:
    conn.execute(delete(docs).where(docs.c.kind == kind, docs.c.ref_id == ref_id))


def set_public(conn: Connection, kind: str, ref_id: str, public: bool, now: datetime) -> None:
    conn.execute(update(docs).where(docs.c.kind == kind, docs.c.ref_id == ref_id).values(public=public, updated_at=now))


@dataclass(frozen=True)
class Filters:
    """Hard filters, applied in SQL with the full-text match (and to vector candidates)."""

    kinds: tuple[str, ...] = ("agent", "listing", "service")
    category: str | None = None
    capabilities: tuple[str, ...] = ()  # every one of them among the tags
    max_price: float | None = None
    pricing_models: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()  # a region, or a prefix ending in '-' ("eu-")
    languages: tuple[str, ...] = ()  # any of them

    @property
    def narrow(self) -> bool:
        """Whether they ask for more than kinds: constraints that most documents may fail."""
        return self != Filters(kinds=self.kinds)


@dataclass(frozen=True)
class Viewer:
    """Whose search it is: a tenant sees the public documents and its own; the admin (tenant None) every one."""

    tenant_id: str | None
    sees_all: bool = False


def _visible(viewer: Viewer, c: Any) -> Any:
    if viewer.sees_all:
        return c.kind == c.kind
    return or_(c.public, c.tenant_id == viewer.tenant_id) if viewer.tenant_id else c.public


def _where(filters: Filters, viewer: Viewer, c: Any = docs.c) -> list[Any]:
    """The filters and the viewer's visibility over the columns ``c`` (the documents' own, or a subquery's)."""
    # (Lists of values as separate parameters, not one expanding list: a statement with an expanding list is never
    # prepared, ``_candidates_statement``.)
    clauses = [_visible(viewer, c), c.kind.in_([literal(k) for k in filters.kinds])]
    if filters.category:
        clauses.append(func.lower(c.category) == filters.category.lower())
    for capability in filters.capabilities:
        clauses.append((" " + c.tags + " ").contains(f" {capability.lower()} ", autoescape=True))
    if filters.max_price is not None:
        clauses.append(and_(c.price.is_not(None), c.price <= filters.max_price))
    if filters.pricing_models:
        clauses.append(c.pricing_model.in_([literal(m) for m in filters.pricing_models]))
    if filters.regions:
        clauses.append(or_(*(c.region.startswith(r, autoescape=True) if r.endswith("-") else c.region == r for r in filters.regions)))
    if filters.languages:
        clauses.append(or_(*((" " + c.languages + " ").contains(f" {lang} ") for lang in filters.languages)))
    return clauses


def lexical(conn: Connection, stems: list[str], prefixes: list[str], filters: Filters, viewer: Viewer, limit: int) -> list[tuple[int, float]]:
    """The best ``limit`` documents matching any of ``stems`` (whole terms) or ``prefixes`` (term beginnings), as
    (doc_seq, score), best first; scores grow with relevance."""
    if not stems and not prefixes:
        return []
    if conn.dialect.name == "postgresql":
        score = text("ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', tsv, to_tsquery('simple', :q)) AS score")
        match = text("tsv @@ to_tsquery('simple', :q)")
        stmt = select(docs.c.doc_seq, score).where(match, *_where(filters, viewer)).order_by(text("score DESC")).limit(limit)
        return [(r[0], float(r[1])) for r in conn.execute(stmt, {"q": pg_tsquery(stems, prefixes)})]
    # FTS5 ranks its matches fastest on its own; joined to the filters, every match is sorted (twice the time at
    # 100,000 documents). So unless the filters are narrow, its best RANKED_FIRST are ranked alone, then filtered: when
    # ``limit`` of them pass, they are exactly the best that pass (any other match ranks below them all); else (and
    # with narrow filters, which few of them may pass) every match is filtered and sorted.
    match, bm25 = text("search_fts MATCH :q"), literal_column("bm25(search_fts, 10.0, 4.0, 1.0)").label("score")
    best = select(_FTS.c.rowid, bm25).where(match).order_by(bm25).limit(RANKED_FIRST).subquery()
    first = select(docs.c.doc_seq, best.c.score).join_from(best, docs, docs.c.doc_seq == best.c.rowid)
    every = select(docs.c.doc_seq, bm25).join_from(docs, _FTS, _FTS.c.rowid == docs.c.doc_seq).where(match)
    query = {"q": fts5_query(stems, prefixes)}
    for stmt in (every,) if filters.narrow else (first, every):
        rows = conn.execute(stmt.where(*_where(filters, viewer)).order_by(text("score")).limit(limit), query).all()
        if len(rows) == limit:
            break
    return [(r[0], -float(r[1])) for r in rows]


RANKED_FIRST = 1_000  # full-text matches ranked on their own before the filters (SQLite)

# A stem shorter than this is matched whole, never as a prefix: "b" (of "a/b") as a prefix is every word that starts
# with b, a slow match (~150 ms at 100,000 documents) of nothing the query meant. Stemmers leave such words as they are.
MIN_PREFIX = 3


def fts5_query(stems: list[str], prefixes: list[str]) -> str:
    """An FTS5 query matching any term. Each is quoted (no query syntax gets through); a stem is given as a prefix
    too, because the porter tokenizer would stem it again ("translat" is its own stem, but not every stem is)."""
    stems, prefixes = _unsubsumed(stems, prefixes)
    quoted = [f'"{s}"*' if len(s) >= MIN_PREFIX else f'"{s}"' for s in stems] + [f'"{p}"*' for p in prefixes]
    return " OR ".join(dict.fromkeys(q.replace("'", "") for q in quoted))


def pg_tsquery(stems: list[str], prefixes: list[str]) -> str:
    """A tsquery (config 'simple': the terms are stems already) matching any term, each also as a prefix."""
    stems, prefixes = _unsubsumed(stems, prefixes)
    terms = [f"'{t}':*" if len(t) >= MIN_PREFIX else f"'{t}'" for t in stems] + [f"'{p}':*" for p in prefixes]
    return " | ".join(dict.fromkeys(terms))


def _unsubsumed(stems: list[str], prefixes: list[str]) -> tuple[list[str], list[str]]:
    """Without the terms another one matches as a prefix ("summaris" when "summar" is there, as "summarise" and
    "summary" stem apart): matched twice, a document would be scored twice for one word, and each term is work for
    every matching document (ranking 16,000 matches of six terms takes ~45 ms at 100,000 documents)."""
    wide = [t for t in (*stems, *prefixes) if len(t) >= MIN_PREFIX] + list(prefixes)

    def kept(term: str) -> bool:
        return not any(term != w and term.startswith(w) for w in wide)

    return [s for s in stems if kept(s)], [p for p in prefixes if kept(p)]


_NOT_READ = ("embedding", "embedder", "embedded_at", "updated_at")  # a search's hits need none of them
# What ranking a candidate takes (its kind and id, the name that breaks ties, what a query may prefer, whether its
# vector is of its text): a search reads hundreds of candidates and shows ten, whose whole documents it reads after.
_RANKED_BY = ("doc_seq", "kind", "ref_id", "title", "languages", "region", "text_hash", "embedded_hash")
_FILTERED_BY = ("public", "tenant_id", "category", "tags", "price", "pricing_model")  # with kind, region, languages


@lru_cache(maxsize=256)
def _candidates_statement(dialect: str, filters: Filters, viewer: Viewer) -> Prepared:
    """``candidates``' read for these filters and viewer (their values are in the statement), compiled once: a search
    reads hundreds of candidates, and building, compiling and decoding through Core cost more than the read."""
    # The candidates by primary key first, then the filters: with "kind IN (…)" in the same WHERE, SQLite's planner
    # (no statistics) walks the (kind, ref_id) index through every document of those kinds instead (25-70 ms at
    # 100,000 documents, 3 ms by key). The LIMIT keeps SQLite from merging the subquery into the filtering query.
    read = [docs.c[name] for name in (*_RANKED_BY, *_FILTERED_BY)]
    picked = select(*read).where(one_of(dialect, docs.c.doc_seq, "seqs")).limit(bindparam("limit")).subquery()
    return Prepared(select(*(picked.c[name] for name in _RANKED_BY)).where(*_where(filters, viewer, picked.c)))


def candidates(conn: Connection, seqs: list[int], filters: Filters, viewer: Viewer) -> dict[int, dict[str, Any]]:
    """The documents of ``seqs`` that pass the filters and the viewer's visibility, by doc_seq: what ranks them."""
    if not seqs:
        return {}
    rows = _candidates_statement(conn.dialect.name, filters, viewer).rows(conn, {"seqs": seqs, "limit": len(seqs)})
    return {r["doc_seq"]: r for r in rows}


@lru_cache(maxsize=2)
def _documents_statement(dialect: str) -> Prepared:
    return Prepared(select(*(c for c in docs.c if c.name not in _NOT_READ)).where(one_of(dialect, docs.c.doc_seq, "seqs")))


def documents(conn: Connection, seqs: list[int]) -> dict[int, dict[str, Any]]:
    """The whole documents of ``seqs`` (without their vectors and when they were written or embedded), by doc_seq."""
    return {r["doc_seq"]: r for r in _documents_statement(conn.dialect.name).rows(conn, {"seqs": seqs})}


def highlights(conn: Connection, documents: list[dict[str, Any]], stems: list[str], prefixes: list[str]) -> dict[int, dict[str, str]]:
    """For matching ``documents`` (whole, as ``documents`` reads them): their title and tags with the matched terms
    marked, and the best fragment of their description, marked (``HIGHLIGHT_OPEN`` … ``HIGHLIGHT_CLOSE``)."""
    if not documents or (not stems and not prefixes):
        return {}
    seqs = [d["doc_seq"] for d in documents]
    o, c = HIGHLIGHT_OPEN, HIGHLIGHT_CLOSE
    if conn.dialect.name == "postgresql":
        options = f"StartSel={o}, StopSel={c}, HighlightAll=true"
        body_options = f"StartSel={o}, StopSel={c}, MaxWords=24, MinWords=12, MaxFragments=1"
        stmt = text(
            "SELECT doc_seq, ts_headline('simple', title, q, :all), ts_headline('simple', tags, q, :all), "
            "ts_headline('english', body, q, :body) FROM search_documents, to_tsquery('simple', :q) q "
            "WHERE doc_seq = ANY(:seqs) AND tsv @@ q"
        )
        rows = conn.execute(stmt, {"q": pg_tsquery(stems, prefixes), "all": options, "body": body_options, "seqs": list(seqs)})
    else:
        page = [(d["doc_seq"], d["title"], d["tags"], d["body"]) for d in documents]
        rows = fts5_marks.marks(page, fts5_query(stems, prefixes), o, c)
    return {r[0]: {"title": r[1] or "", "tags": r[2] or "", "body": r[3] or ""} for r in rows}


def vocabulary(conn: Connection) -> tuple[dict[str, int], tuple[int, int]]:
    """Every indexed term (a stem) with the number of documents holding it, and the ``extent`` it was read at (read
    first: a document that comes during the read makes the next ``extent`` differ)."""
    at = extent(conn)
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text("SELECT word, ndoc FROM ts_stat('SELECT tsv FROM search_documents')"))
    else:
        rows = conn.execute(text("SELECT term, doc FROM search_vocab"))
    return {r[0]: int(r[1]) for r in rows}, at


def extent(conn: Connection) -> tuple[int, int]:
    """How many documents there are and the newest one's doc_seq: a cheap sign that documents came or went."""
    row = conn.execute(select(func.count(), func.max(docs.c.doc_seq)).select_from(docs)).one()
    return int(row[0]), int(row[1] or 0)


# -- vectors ----------------------------------------------------------------------------------------------------------


def unembedded(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` documents with no vector for their current text (by ``ix_search_documents_unembedded``)."""
    stmt = select(docs.c.doc_seq, docs.c.title, docs.c.tags, docs.c.body, docs.c.text_hash).where(docs.c.embedded_hash.is_(None))
    return [dict(r) for r in conn.execute(stmt.order_by(docs.c.doc_seq).limit(limit)).mappings()]


def forget_other_embedders(conn: Connection, embedder: str) -> int:
    """Queue again the documents embedded by another model than ``embedder`` (the hub's embedder changed)."""
    stale = and_(docs.c.embedder.is_not(None), docs.c.embedder != embedder, docs.c.embedded_hash.is_not(None))
    return conn.execute(update(docs).where(stale).values(embedded_hash=None)).rowcount


def store_vectors(conn: Connection, embedder: str, vectors: list[tuple[int, str, bytes]], now: datetime) -> int:
    """Store (doc_seq, text_hash, vector) where the document still has that text; returns how many were stored."""
    stored = 0
    for seq, hashed, vector in vectors:
        stmt = update(docs).where(docs.c.doc_seq == seq, docs.c.text_hash == hashed)
        stored += conn.execute(stmt.values(embedding=vector, embedder=embedder, embedded_hash=hashed, embedded_at=now)).rowcount
    return stored


@point_read
def last_embedded_at(conn: Connection) -> datetime | None:
    """When the latest vector was stored (the end of ``ix_search_documents_embedded_at``)."""
    latest: datetime | None = conn.execute(select(func.max(docs.c.embedded_at))).scalar()
    return latest


def vectors(conn: Connection, embedder: str, after: int, limit: int, since: datetime | None = None) -> list[tuple[int, bytes]]:
    """Vectors of ``embedder`` in doc_seq order after ``after`` (and stored since ``since``): (doc_seq, vector).
    Some may be stale (their document's text changed since): the search checks candidates' hashes."""
    stmt = select(docs.c.doc_seq, docs.c.embedding).where(docs.c.embedder == embedder, docs.c.embedding.is_not(None), docs.c.doc_seq > after)
    if since is not None:
        stmt = stmt.where(docs.c.embedded_at >= since)
    return [(r[0], r[1]) for r in conn.execute(stmt.order_by(docs.c.doc_seq).limit(limit))]


def replace_imported(conn: Connection, server: str, documents: list[dict[str, Any]]) -> None:
    """The documents of an external MCP server's tools become ``documents`` (none: the server is gone)."""
    names = [d["ref_id"] for d in documents]
    gone = and_(docs.c.kind == "service", docs.c.ref_id.startswith(f"ext.{server}.", autoescape=True))
    if names:
        gone = and_(gone, docs.c.ref_id.not_in(names))
    conn.execute(delete(docs).where(gone))
    for document in documents:
        put(conn, document)


# -- rebuilding -------------------------------------------------------------------------------------------------------

_SOURCES = {"agent": (agents, agents.c.agent_id), "listing": (market_listings, market_listings.c.listing_id),
            "service": (services, services.c.service_name)}  # fmt: skip
_BUILDERS = {"agent": agent_document, "listing": listing_document, "service": service_document}


def rebuild_page(conn: Connection, kind: str, after: str, limit: int, now: datetime) -> str | None:
    """Write the documents of up to ``limit`` sources of ``kind`` after id ``after``; returns the last id, or None
    when there were none. (A source deleted meanwhile leaves no document: its own deletion removed it.)"""
    table, key = _SOURCES[kind]
    rows = [dict(r) for r in conn.execute(select(table).where(key > after).order_by(key).limit(limit)).mappings()]
    for row in rows:
        put(conn, _BUILDERS[kind](row, now))
    return str(rows[-1][key.name]) if rows else None
