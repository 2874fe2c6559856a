"""search: recall@5 and nDCG@10 of lexical, semantic and hybrid search over the judged evaluation set; query latency
at 10,000 and 100,000 listings.

Quality: a hub with the local embedder gets the evaluation corpus (``benchmarks/search_eval``) through its own tools,
embeds it, and answers each of the 100 queries in each mode as the admin (limit 10, listings and agents). Queries
with no relevant entry have no recall or nDCG: they are left out of the means and their result counts reported.

Latency: synthetic listings (``search_eval/synthetic.py``) are written through the store's own publish operation
(a hub's HTTP publishes would take minutes at 100,000; the quality stage measures their rate), a hub is started on
them and embeds them (its throughput is reported), then the 100 queries are timed over one keep-alive connection,
every mode, several rounds. A search's own time is reported apart from the time spent embedding its query, as
the target asks: the untimed pass embeds each query once (that time is reported), the timed rounds find its vector
in the hub's cache of recent queries (what the answer's ``embedding_ms`` still reports is subtracted). The larger
size grows the smaller one's store (each synthetic set is a prefix of the larger), with a fresh hub process per
size. From 20,000 vectors the hub clusters them
(``agora/search/clusters.py``): the same vectors, read from the store and clustered in the benchmark's process,
give the share of the exact search's nearest neighbours the clustered search finds for the 100 queries.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agora.core.services.search import CANDIDATES
from agora.search.clusters import CLUSTER_FROM
from agora.search.embedders import LocalEmbedder

from ..bench import DEFAULT, Bench
from ..http import Connection, build_request
from ..load import percentile
from ..report import ValueRecord, at_least, at_most
from ..search_eval import synthetic
from ..search_eval.metrics import best_recall_at, ndcg_at, recall_at
from ..search_seed import SEARCH_PATH, ClusteredRecall, Embedded, clustered_recall, load_corpus, wait_embedded, write_listings
from ..servers import HubSpec, Server, hub_server
from ..stores import StoreProvider

NAME = "search"
DATA = Path(__file__).resolve().parent.parent / "search_eval"
MODES = ("lexical", "semantic", "hybrid")
RECALL_K, NDCG_K = 5, 10
TARGET_NDCG_GAIN = 0.15  # hybrid over lexical
TARGET_P99_MS = 50.0  # at TARGET_SIZE listings, the query's embedding apart
TARGET_SIZE = 100_000
SIZES, QUICK_SIZES = (10_000, 100_000), (10_000,)
ROUNDS, QUICK_ROUNDS = 5, 2  # timed passes over the queries in each mode (after one untimed pass)
# --no-local-node: the local hosting node registers an agent of its own, which is no entry of the corpus.
HUB_OPTIONS = ("--embedder", "local", "--no-local-node")
HUB_START_SECONDS = 120.0  # the first start loads torch and the model
MIN_EMBED_RATE = 10.0  # documents/s the embedding wait allows for before giving up


def _read(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def _search_body(query: str, mode: str) -> dict[str, Any]:
    return {"q": query, "mode": mode, "limit": NDCG_K, "kinds": ["listing", "agent"]}


@contextmanager
def progress_bar(bench: Bench, description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar; the callable sets how much of ``total`` is done."""
    with Progress(
        TextColumn("[dim]· {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=bench.console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=min(done, total))


@contextmanager
def _running_hub(spec: HubSpec) -> Iterator[Server]:
    hub = hub_server(spec, *HUB_OPTIONS).start(HUB_START_SECONDS)
    try:
        yield hub
    finally:
        hub.stop()


def _wait_embedded(bench: Bench, hub: Server, key: str, documents: int) -> Embedded:
    """Wait for the hub to embed about ``documents`` documents, the bar following its count of vectors."""
    with progress_bar(bench, f"{NAME}: the hub embeds its documents", documents) as done:
        return wait_embedded(hub, key, 120 + documents / MIN_EMBED_RATE, done)


# -- quality ----------------------------------------------------------------------------------------------------------


@dataclass
class Scores:
    """One mode's figures over the judged queries, and the result counts of the queries with nothing relevant."""

    ndcg: dict[str, float]  # query id → nDCG@10
    recall: dict[str, float]  # query id → recall@5
    unanswerable: dict[str, int]  # query id → results returned

    def mean(self, figures: dict[str, float], ids: list[str] | None = None) -> float:
        chosen = [figures[i] for i in ids] if ids is not None else list(figures.values())
        return statistics.fmean(chosen)


def _rankings(hub: Server, key: str, queries: list[dict[str, Any]], mode: str, ids: dict[str, str]) -> dict[str, list[str]]:
    """Each query's results in ``mode``, as corpus ids (an entry not in the corpus keeps the hub's id: grade 0)."""
    ranked: dict[str, list[str]] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for query in queries:
            answer = client.post(SEARCH_PATH, json=_search_body(query["query"], mode))
            if answer.status_code != 200:
                raise RuntimeError(f"{query['id']} in {mode} mode answered {answer.status_code}: {answer.text[:300]}")
            found = answer.json()
            if found["mode"] != mode:
                raise RuntimeError(f"{query['id']}: asked for {mode}, the hub searched {found['mode']} ({found['semantic']})")
            ranked[query["id"]] = [ids.get(hit["id"], hit["id"]) for hit in found["results"]]
    return ranked


def _score(queries: list[dict[str, Any]], ranked: dict[str, list[str]]) -> Scores:
    scores = Scores({}, {}, {})
    for query in queries:
        results, judged = ranked[query["id"]], query["judgments"]
        if any(grade > 0 for grade in judged.values()):
            scores.ndcg[query["id"]] = ndcg_at(results, judged, NDCG_K)
            scores.recall[query["id"]] = recall_at(results, judged, RECALL_K)
        else:
            scores.unanswerable[query["id"]] = len(results)
    return scores


def _by_tag(queries: list[dict[str, Any]], scores: Scores) -> dict[str, list[str]]:
    """The judged queries of each tag (tags in the order of their first use)."""
    tags: dict[str, list[str]] = {}
    for query in queries:
        if query["id"] in scores.ndcg:
            for tag in query["tags"]:
                tags.setdefault(tag, []).append(query["id"])
    return tags


def _quality(bench: Bench, store: StoreProvider) -> None:
    corpus, queries = _read("corpus.json"), _read("queries.json")
    kind = store.kind.value
    spec = store.fresh()
    with _running_hub(spec) as hub:
        key = spec.admin_key
        started = time.perf_counter()
        with progress_bar(bench, f"{NAME}: publishing and registering the {len(corpus)} evaluation entries", len(corpus)) as done:
            ids = load_corpus(hub, key, corpus, done)
        load_rate = len(corpus) / (time.perf_counter() - started)
        embedded = _wait_embedded(bench, hub, key, len(corpus))
        bench.step(f"{NAME}: {embedded.documents:,} documents embedded; {len(queries)} queries in each of {', '.join(MODES)}")
        scores = {mode: _score(queries, _rankings(hub, key, queries, mode, ids)) for mode in MODES}
    tags = _by_tag(queries, scores["lexical"])
    judged = [q for q in queries if q["id"] in scores["lexical"].ndcg]
    best_recall = statistics.fmean(best_recall_at(q["judgments"], RECALL_K) for q in judged)
    _print_tags(bench, scores, tags)
    bench.add(ValueRecord(NAME, kind, "corpus loaded through the hub's tools (publish, register), one call at a time", load_rate, "calls/s",
                          notes=f"{len(corpus)} entries; at this rate 100,000 listings would take {TARGET_SIZE / load_rate / 60:.0f} min"))  # fmt: skip
    for mode in MODES:
        s = scores[mode]
        per_tag = ", ".join(f"{tag} {s.mean(s.ndcg, members):.2f}" for tag, members in tags.items())
        bench.add(ValueRecord(NAME, kind, f"nDCG@{NDCG_K}, {mode} ({len(s.ndcg)} judged queries)", s.mean(s.ndcg), "",
                              notes=f"by tag: {per_tag}"))  # fmt: skip
        per_tag = ", ".join(f"{tag} {s.mean(s.recall, members):.2f}" for tag, members in tags.items())
        bench.add(ValueRecord(NAME, kind, f"recall@{RECALL_K}, {mode}", s.mean(s.recall), "",
                              notes=f"the best any ranking reaches: {best_recall:.3f}; by tag: {per_tag}"))  # fmt: skip
        counts = s.unanswerable
        bench.add(ValueRecord(NAME, kind, f"results for the {len(counts)} queries with nothing relevant, {mode}",
                              statistics.fmean(counts.values()), "per query",
                              notes=", ".join(f"{qid}: {n}" for qid, n in counts.items())))  # fmt: skip
    bench.add(_gain_record(kind, scores["lexical"].ndcg, scores["hybrid"].ndcg))


def _gain_record(kind: str, lexical: dict[str, float], hybrid: dict[str, float]) -> ValueRecord:
    """Hybrid's mean nDCG over lexical's, with the queries it loses most on (where to look first)."""
    gain = statistics.fmean(hybrid.values()) - statistics.fmean(lexical.values())
    change = {qid: hybrid[qid] - lexical[qid] for qid in lexical}
    worst = sorted((qid for qid in change if change[qid] < 0), key=change.__getitem__)[:5]
    losses = ", ".join(f"{qid} {lexical[qid]:.2f} → {hybrid[qid]:.2f}" for qid in worst)
    return ValueRecord(NAME, kind, f"nDCG@{NDCG_K}: hybrid − lexical", gain, "", at_least(gain, TARGET_NDCG_GAIN, f"≥ {TARGET_NDCG_GAIN:g}"),
                       notes=f"hybrid better on {sum(c > 0 for c in change.values())} queries, worse on {sum(c < 0 for c in change.values())}"
                             + (f"; worst: {losses}" if losses else ""))  # fmt: skip


def _print_tags(bench: Bench, scores: dict[str, Scores], tags: dict[str, list[str]]) -> None:
    table = Table(title=f"{NAME}: nDCG@{NDCG_K} / recall@{RECALL_K} by query tag", title_justify="left")
    table.add_column("tag")
    table.add_column("queries", justify="right")
    for mode in MODES:
        table.add_column(mode, justify="right")
    for tag, members in [("all", list(scores["lexical"].ndcg)), *tags.items()]:
        cells = [f"{scores[m].mean(scores[m].ndcg, members):.3f} / {scores[m].mean(scores[m].recall, members):.3f}" for m in MODES]
        table.add_row(tag, str(len(members)), *cells)
    bench.console.print(table)


# -- latency ----------------------------------------------------------------------------------------------------------


@dataclass
class Timings:
    """One mode's searches: HTTP round trips and the query embedding each answer reports, in ms; and the embedding
    of each query the first time the hub saw it (the untimed pass: the timed ones find it in the hub's cache)."""

    round_trips: list[float] = field(default_factory=list)
    embedding: list[float] = field(default_factory=list)
    first_embedding: list[float] = field(default_factory=list)

    @property
    def searching(self) -> list[float]:
        """Each round trip without its query's embedding."""
        return sorted(t - e for t, e in zip(self.round_trips, self.embedding))


async def _time_searches(port: int, key: str, queries: list[str], rounds: int) -> dict[str, Timings]:
    """Every query in every mode over one keep-alive connection: one untimed pass, then ``rounds`` timed ones."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    requests = {(q, m): build_request("POST", SEARCH_PATH, port, headers, json.dumps(_search_body(q, m)).encode()) for q in queries for m in MODES}
    timings = {mode: Timings() for mode in MODES}
    async with Connection(port) as conn:
        for timed in [False] + [True] * rounds:
            for query in queries:
                for mode in MODES:  # modes interleaved: a slow spell on the machine falls on all of them
                    started = time.perf_counter()
                    status, body = await conn.send(requests[query, mode])
                    elapsed = (time.perf_counter() - started) * 1000
                    if status != 200:
                        raise RuntimeError(f"search {query!r} ({mode}) answered {status}: {body[:300]!r}")
                    embedding = json.loads(body)["embedding_ms"] or 0.0
                    if timed:
                        timings[mode].round_trips.append(elapsed)
                        timings[mode].embedding.append(embedding)
                    else:
                        timings[mode].first_embedding.append(embedding)
    return timings


def _latency(bench: Bench, store: StoreProvider, sizes: tuple[int, ...], rounds: int) -> None:
    kind = store.kind.value
    queries = [q["query"] for q in _read("queries.json")]
    spec = store.fresh()
    listings = synthetic.generate(max(sizes))
    written = embedded_before = 0
    for size in sizes:
        with progress_bar(bench, f"{NAME}: writing listings {written + 1:,}-{size:,} through the store's publish operation", size - written) as done:
            seconds = asyncio.run(write_listings(spec, listings[written:size], done))
        bench.add(ValueRecord(NAME, kind, f"listings {written + 1:,}-{size:,} written through the store (no hub)", (size - written) / seconds,
                              "listings/s", notes=f"{seconds:.1f} s, {size - written:,} publish operations in transactions of 2,000"))  # fmt: skip
        written = size
        with _running_hub(spec) as hub:
            embedded = _wait_embedded(bench, hub, spec.admin_key, size)
            new = embedded.documents - embedded_before
            bench.add(ValueRecord(NAME, kind, f"embedding {new:,} documents (the hub's embedder, local MiniLM)", new / embedded.seconds,
                                  "docs/s", notes=f"{embedded.seconds:.0f} s until nothing waited; {embedded.documents:,} vectors in all; "
                                                  f"machine load (1 min) {os.getloadavg()[0]:.1f} at the end"))  # fmt: skip
            embedded_before = embedded.documents
            bench.step(f"{NAME}: {len(queries)} queries × {len(MODES)} modes × {rounds} rounds among {size:,} listings, one connection")
            load_before = os.getloadavg()[0]
            timings = asyncio.run(_time_searches(hub.port, spec.admin_key, queries, rounds))
            load = f"machine load (1 min) {load_before:.1f} → {os.getloadavg()[0]:.1f}"  # other work on the 2 cores moves every figure
            memory = hub.memory_kb()
        for mode in MODES:
            _latency_record(bench, kind, size, mode, timings[mode], load)
        if embedded.documents >= CLUSTER_FROM:
            _recall_records(bench, kind, size, asyncio.run(clustered_recall(spec, LocalEmbedder(), queries)))
        bench.add(ValueRecord(NAME, kind, f"hub RSS, {size:,} listings and their vectors loaded", memory["VmRSS"] / 1024, "MiB",
                              notes=f"peak {memory['VmHWM'] / 1024:.0f} MiB; the MiniLM model and torch included"))  # fmt: skip


def _latency_record(bench: Bench, kind: str, size: int, mode: str, timings: Timings, load: str) -> None:
    round_trips, first, searching = sorted(timings.round_trips), sorted(timings.first_embedding), timings.searching
    p99 = percentile(searching, 99)
    check = at_most(p99, TARGET_P99_MS, f"p99 ≤ {TARGET_P99_MS:g} ms") if size == TARGET_SIZE else None
    embedded = (f"; embedding a query the first time p50 {percentile(first, 50):.1f}, p99 {percentile(first, 99):.1f} ms "
                f"(then from the hub's cache: {percentile(sorted(timings.embedding), 50):.2f} ms)") if mode != "lexical" else ""  # fmt: skip
    bench.add(ValueRecord(NAME, kind, f"{mode} search among {size:,} listings, p99 without the query's embedding", p99, "ms", check,
                          notes=f"p50 {percentile(searching, 50):.1f} ms; HTTP round trip p50 {percentile(round_trips, 50):.1f}, "
                                f"p99 {percentile(round_trips, 99):.1f} ms{embedded}; {len(round_trips)} searches; {load}"))  # fmt: skip


def _recall_records(bench: Bench, kind: str, size: int, recall: ClusteredRecall) -> None:
    notes = (f"{recall.clusters} clusters made in {recall.clustering_seconds:.1f} s; per query {recall.clustered_ms:.1f} ms "
             f"clustered, {recall.exact_ms:.1f} ms exact (median, in the benchmark's process)")  # fmt: skip
    bench.add(ValueRecord(NAME, kind, f"clustered vector search among {size:,} listings: recall@10 of the exact search", recall.at_10,
                          "share", notes=f"worst query {recall.worst_at_10:.2f}; {notes}"))  # fmt: skip
    bench.add(ValueRecord(NAME, kind, f"clustered vector search among {size:,} listings: recall@{CANDIDATES} (the candidates)",
                          recall.at_candidates, "share", notes=notes))  # fmt: skip


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    quick = bench.profile.load_seconds < DEFAULT.load_seconds
    _quality(bench, store)
    _latency(bench, store, QUICK_SIZES if quick else SIZES, QUICK_ROUNDS if quick else ROUNDS)
