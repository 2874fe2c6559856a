"""The search benchmark's data in a hub: the judged corpus through the hub's own tools, synthetic listings through
the store's own operations (a hub is then started on them), the wait until every document has its vector, and what
the clustered vector search finds of what an exact one finds."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Connection

from agora.core.services.marketplace import stored_fields
from agora.core.services.search import CANDIDATES, MIN_SIMILARITY
from agora.search.engine import INDEX_STATE_KEY, INDEX_VERSION
from agora.search.embedders import Embedder
from agora.search.vectors import FRESH_SECONDS, PAGE as VECTOR_PAGE, VectorCopy
from agora.store import open_store
from agora.store.ops import marketplace as market_ops
from agora.store.ops import search as search_ops
from agora.store.ops import system as system_ops
from agora_sdk.wire.marketplace import PublishListing

from .servers import HubSpec, Server

ADMIN_TENANT = "default"  # where the admin's listings go, as a publish through the hub puts them
WRITE_BATCH = 2_000  # listings per transaction when writing through the store
SEARCH_PATH = "/agora/marketplace/search"
POLL_SECONDS = 1.0
_EMBEDDED = re.compile(r"(\d+) documents embedded, (none|\d+(?: or more)?) waiting")


def publish_body(entry: dict[str, Any]) -> dict[str, Any]:
    """An evaluation listing (corpus format) as ``agora.marketplace.publish`` takes it."""
    body: dict[str, Any] = {
        "agent_name": entry["agent_name"], "description": entry["description"], "category": entry["category"],
        "capabilities": entry["capabilities"], "pricing": entry["pricing"], "languages": entry.get("languages", []),
        "repository": {"url": f"https://example.com/listings/{entry['agent_name']}.git"},
        "build_config": {"start_command": "python agent.py"},
    }  # fmt: skip
    if entry.get("region"):
        body["host_requirements"] = {"preferred_region": entry["region"]}
    return body


def register_body(entry: dict[str, Any]) -> dict[str, Any]:
    """An evaluation agent as ``agora.agents.register`` takes it: what the index reads of an agent beyond its name,
    description and capabilities (category, languages, region) goes in ``metadata``."""
    metadata = {key: entry[key] for key in ("category", "languages", "region") if entry.get(key)}
    return {"agent_name": entry["agent_name"], "description": entry["description"], "capabilities": entry["capabilities"],
            "metadata": metadata}  # fmt: skip


def load_corpus(hub: Server, key: str, corpus: list[dict[str, Any]], on_progress: Callable[[int], None]) -> dict[str, str]:
    """Publish the listings and register the agents of ``corpus`` as the admin, one call each; returns the hub's id
    of each entry → the entry's id. ``on_progress`` gets the count of entries loaded so far."""
    ids: dict[str, str] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for entry in corpus:
            if entry["kind"] == "listing":
                answer = client.post("/agora/marketplace/publish", json=publish_body(entry))
                hub_id = "listing_id"
            else:
                answer = client.post("/agora/agents/register", json=register_body(entry))
                hub_id = "agent_id"
            if answer.status_code != 200:
                raise RuntimeError(f"loading {entry['id']} answered {answer.status_code}: {answer.text[:300]}")
            ids[answer.json()[hub_id]] = entry["id"]
            on_progress(len(ids))
    return ids


def _publish_all(conn: Connection, listings: list[dict[str, Any]], now: datetime) -> None:
    for fields in listings:
        market_ops.publish(conn, ADMIN_TENANT, fields, now)


async def write_listings(spec: HubSpec, listings: list[dict[str, Any]], on_progress: Callable[[int], None]) -> float:
    """Write ``listings`` (corpus format) into the store of ``spec`` with the operation a publish runs (listing row and
    search document), ``WRITE_BATCH`` to a transaction, while no hub runs on it; returns the seconds it took.
    ``on_progress`` gets the count of listings written so far."""
    store = open_store(spec.database_url, spec.data_dir)
    await store.start()
    try:
        started = time.perf_counter()
        now = datetime.now(UTC)
        for first in range(0, len(listings), WRITE_BATCH):
            chunk = listings[first : first + WRITE_BATCH]
            await store.write(_publish_all, [stored_fields(PublishListing.model_validate(publish_body(e))) for e in chunk], now)
            on_progress(first + len(chunk))
        # This version's document builder wrote them, as a hub would have: the hub need not rebuild the index.
        await store.write(system_ops.put, INDEX_STATE_KEY, INDEX_VERSION, now)
        return time.perf_counter() - started
    finally:
        await store.close()


@dataclass(frozen=True)
class Embedded:
    documents: int  # vectors the hub searches (every document: listings, agents and the hub's own tools)
    seconds: float  # from the first look until an answer said no document waited


def _embedding_state(client: httpx.Client) -> tuple[int, bool]:
    """(vectors the hub searched, whether no document waits for one) as a search in semantic mode says them."""
    answer = client.post(SEARCH_PATH, json={"q": "embedding progress", "mode": "semantic", "limit": 1})
    answer.raise_for_status()
    semantic = answer.json()["semantic"]
    if (state := _EMBEDDED.search(semantic)) is None:
        raise RuntimeError(f"the hub's answer does not say how many documents are embedded: {semantic!r}")
    return int(state.group(1)), state.group(2) == "none"


def wait_embedded(hub: Server, key: str, timeout: float, on_progress: Callable[[int], None]) -> Embedded:
    """Poll searches in semantic mode until one says no document waits for a vector; every document written before
    the call then has one, and searches from ``FRESH_SECONDS`` later search it. ``on_progress`` gets the count of
    vectors so far."""
    started = time.perf_counter()
    with httpx.Client(base_url=f"http://127.0.0.1:{hub.port}", headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        while time.perf_counter() - started < timeout:
            count, done = _embedding_state(client)
            on_progress(count)
            if done:
                seconds = time.perf_counter() - started
                time.sleep(FRESH_SECONDS + 0.1)
                count, _ = _embedding_state(client)
                on_progress(count)
                return Embedded(count, seconds)
            time.sleep(POLL_SECONDS)
    raise RuntimeError(f"documents still waiting for their vectors after {timeout:.0f}s")


@dataclass(frozen=True)
class ClusteredRecall:
    """The clustered vector search against the exact one, over the same vectors and queries."""

    at_10: float  # mean share of the exact 10 nearest (above the similarity floor) the clustered search found
    at_candidates: float  # the same over the ``CANDIDATES`` nearest a search takes from the vectors
    worst_at_10: float
    exact_ms: float  # per query, median
    clustered_ms: float
    clustering_seconds: float
    clusters: int


async def clustered_recall(spec: HubSpec, embedder: Embedder, queries: list[str]) -> ClusteredRecall:
    """Every vector of ``spec``'s store read as a replica reads them, clustered as it clusters them, and each query's
    nearest neighbours found both ways."""
    store = open_store(spec.database_url, spec.data_dir)
    await store.start()
    try:
        exact, after = VectorCopy(), 0
        while page := await store.read(search_ops.vectors, embedder.name, after, VECTOR_PAGE):
            exact.put(page)
            after = page[-1][0]
    finally:
        await store.close()
    started = time.perf_counter()
    clustered = exact.clustered()
    clustering_seconds = time.perf_counter() - started
    assert clustered.clusters is not None, f"{exact.count:,} vectors are too few to cluster"
    at_10, at_candidates, exact_ms, clustered_ms = [], [], [], []
    for query in await embedder.embed(queries):
        ranked = []
        for copy, timings in ((exact, exact_ms), (clustered, clustered_ms)):
            started = time.perf_counter()
            found = copy.nearest(query, CANDIDATES)
            timings.append((time.perf_counter() - started) * 1000)
            ranked.append([seq for seq, similarity in found if similarity >= MIN_SIMILARITY])
        truth, got = ranked
        if truth:
            at_10.append(len(set(truth[:10]) & set(got[:10])) / len(truth[:10]))
            at_candidates.append(len(set(truth) & set(got)) / len(truth))
    return ClusteredRecall(
        statistics.mean(at_10), statistics.mean(at_candidates), min(at_10), statistics.median(exact_ms),
        statistics.median(clustered_ms), clustering_seconds, len(clustered.clusters.centroids),
    )  # fmt: skip
