"""Prometheus metrics, in a registry of the hub's own (tests may start several hubs in one process)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

REGISTRY = CollectorRegistry(auto_describe=True)

TOOL_CALLS = Counter(
    "agora_tool_calls", "Tool calls by tool and outcome (ok or the error code).", ["tool", "outcome"], registry=REGISTRY
)
TOOL_LATENCY = Histogram(
    "agora_tool_duration_seconds",
    "Time spent in a tool call, from authorisation to result.",
    ["tool"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "agora_http_requests", "HTTP requests by method and status.", ["method", "status"], registry=REGISTRY
)
EDGE_REFUSALS = Counter(
    "agora_edge_refusals",
    "Connections and requests refused before reaching the app, by reason (headers, header_timeout, body_timeout, "
    "body_size, connections, malformed).",
    ["reason"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "agora_rate_limited", "Requests answered 429, by principal kind (or anonymous/locked_out) and tool class.", ["kind", "tool_class"], registry=REGISTRY
)
AUTH_FAILURES = Counter("agora_auth_failures", "Requests whose credentials were refused (401).", registry=REGISTRY)
LOCKOUTS = Counter("agora_auth_lockouts", "Client addresses locked out after repeated failed authentication.", registry=REGISTRY)
BUS_UP = Gauge(
    "agora_bus_up",
    "1 while the notifier reaches the other replicas (Redis), 0 while it does not and wake-ups fall back to polling.",
    registry=REGISTRY,
)
AGENTS = Gauge("agora_agents", "Registered agents by status (read from the store at scrape time).", ["status"], registry=REGISTRY)
WORK_CHANNELS = Gauge(
    "agora_work_channels", "WebSockets of agent runtimes that take tasks (declared with a take frame), on this replica.", registry=REGISTRY
)
TASKS_PUSHED = Counter(
    "agora_tasks_pushed",
    "Tasks pushed down agents' WebSockets, by how they were taken: claimed (by the channel) or handed (leased as they "
    "were made); given_back: pushed on a socket that broke before the frame left.",
    ["how"],
    registry=REGISTRY,
)
MESSAGES_STREAMED = Counter(
    "agora_messages_streamed",
    "Messages pushed on live streams (WebSocket, SSE), by how they reached the stream: read (from the store when it was "
    "woken) or handed (by their send, to a stream of the recipient on the same replica with room).",
    ["how"],
    registry=REGISTRY,
)
RETENTION_PURGED = Counter(
    "agora_retention_purged", "Rows the retention job removed, by kind (messages, events, a2a_tasks, tasks, …).", ["kind"], registry=REGISTRY
)
UNIT_REPORTS = Counter(
    "agora_unit_reports",
    "Unit reports of per_unit instances, by outcome: accepted, replayed (sent again: counted once), or why refused "
    "(unknown_unit, over_max_per_call, not_per_unit, changed, malformed: an execution result's units that are not counts).",
    ["outcome"],
    registry=REGISTRY,
)
LEDGER_ENTRIES = Counter(
    "agora_credit_ledger_entries", "Rows this replica added to the prepaid credits ledger, by kind (grant, refund, debit).",
    ["kind"], registry=REGISTRY,
)  # fmt: skip
CALLS_REPLAYED = Counter(
    "agora_ws_calls_replayed",
    "Keyed calls sent again on an agent's WebSocket after a reconnect and answered with the first run's answer.",
    registry=REGISTRY,
)
MCP_REQUESTS = Counter(
    "agora_mcp_requests",
    "Requests to /mcp by who answered them: fast (a plain stateless request answered straight from the catalog) or "
    "sdk (the MCP SDK: sessions, streams, tasks, and whatever the fast path leaves to it).",
    ["path"],
    registry=REGISTRY,
)
A2A_REQUESTS = Counter(
    "agora_a2a_jsonrpc_requests",
    "JSON-RPC requests to agents' A2A fronts by who answered them: fast (a plain blocking SendMessage, answered "
    "without the SDK's protobuf round trips) or sdk (the A2A SDK: every other method, version and shape).",
    ["path"],
    registry=REGISTRY,
)
SEARCH_QUERIES = Counter(
    "agora_search_queries", "Searches by how they ranked: lexical, or hybrid (lexical and vectors).", ["mode"], registry=REGISTRY
)
SEARCH_EMBEDDINGS = Counter("agora_search_embeddings", "Search documents embedded by this replica.", registry=REGISTRY)
SEARCH_EMBED_SECONDS = Histogram(
    "agora_search_embed_seconds",
    "Time the embedder took, for a query or for a batch of documents.",
    ["what"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

STORE_WRITE_SECONDS = Histogram(
    "agora_store_write_seconds",
    "Time a store write took from being asked for to its commit, waiting included (behind SQLite's one writer, or for "
    "a PostgreSQL connection): the first figure to rise when the database is what holds requests up.",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
STORE_WRITES_IN_FLIGHT = Gauge(
    "agora_store_writes_in_flight", "Store writes asked for and not yet committed, on this replica (at scrape time).", registry=REGISTRY
)
STORE_GROUP_COMMIT = Histogram(
    "agora_store_group_commit_operations",
    "Writes the SQLite writer committed together, in one transaction (group commit): near 1 at light load, growing "
    "as writes queue up behind it.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
    registry=REGISTRY,
)
STORE_BUSY_REFUSALS = Counter(
    "agora_store_busy_refusals_total",
    "Calls refused 503 database_busy because every PostgreSQL connection of the pool was busy: reason queue_full "
    "(--pg-max-waiting operations already waited) or pool_timeout (none came free within --pg-pool-timeout). Rising: "
    "a slow database, or more work than --pg-pool-size connections carry.",
    ["reason"],
    registry=REGISTRY,
)
STORAGE_FULL_REFUSALS = Counter(
    "agora_storage_full_refusals_total",
    "Writes refused because the disk (of the SQLite store, or a hosting node's builds) had no room: answered 507 "
    "storage_full, nothing of them kept. Rising: free space.",
    registry=REGISTRY,
)

SCHEDULE_TICKS = Counter(
    "agora_schedule_ticks",
    "Ticks of schedules, by outcome: fired, skipped (the run before still going), queued, missed (passed while no hub "
    "ran) or refused (the action was refused).",
    ["outcome"],
    registry=REGISTRY,
)
SCHEDULE_LAG = Histogram(
    "agora_schedule_lag_seconds",
    "From a tick's time (with its jitter) to its action being committed, for ticks the clock fired.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)

EVENT_LOOP_LAG = Histogram(
    "agora_event_loop_lag_seconds",
    "How late the event loop ran a tick it had scheduled (observability/loop_watch): high values delay every request.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)

# A metric's child per label values, looked up once: ``labels()`` costs a lock and a tuple per call (~2% of a send).
# The label values are few (tools, error codes, methods, statuses) and these metrics are never cleared.
@lru_cache(maxsize=4096)
def _child(metric: Any, *values: str) -> Any:
    return metric.labels(*values)


def record_call(tool: str, outcome: str, seconds: float) -> None:
    _child(TOOL_CALLS, tool, outcome).inc()
    _child(TOOL_LATENCY, tool).observe(seconds)


def count_request(method: str, status: int) -> None:
    _child(HTTP_REQUESTS, method, str(status)).inc()


def count_purged(kind: str, rows: int) -> None:
    _child(RETENTION_PURGED, kind).inc(rows)


def count_ticks(outcome: str, ticks: int = 1) -> None:
    _child(SCHEDULE_TICKS, outcome).inc(ticks)


def count_pushed(how: str, tasks: int) -> None:
    _child(TASKS_PUSHED, how).inc(tasks)


def count_streamed(how: str, messages: int) -> None:
    _child(MESSAGES_STREAMED, how).inc(messages)


def count_mcp_request(path: str) -> None:
    _child(MCP_REQUESTS, path).inc()


def count_a2a_request(path: str) -> None:
    _child(A2A_REQUESTS, path).inc()


def count_edge_refusal(reason: str) -> None:
    _child(EDGE_REFUSALS, reason).inc()


def count_rate_limited(kind: str, tool_class: str) -> None:
    _child(RATE_LIMITED, kind, tool_class).inc()


def count_unit_report(outcome: str) -> None:
    _child(UNIT_REPORTS, outcome).inc()


def count_ledger_entry(kind: str) -> None:
    _child(LEDGER_ENTRIES, kind).inc()


def render(agents_by_status: dict[str, int], store_writes_in_flight: int) -> bytes:
    STORE_WRITES_IN_FLIGHT.set(store_writes_in_flight)
    AGENTS.clear()
    for status, count in agents_by_status.items():
        AGENTS.labels(status).set(count)
    return generate_latest(REGISTRY)
