"""Every setting of the hub: one dataclass, filled from CLI flags, each of which also reads an AGORA_* variable."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agora.core.oidc import OidcSettings


LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".agora")
    database_url: str | None = None
    redis_url: str | None = None
    redis_channel: str = "agora:events"  # one per deployment: replicas of one hub share it, other hubs on that Redis do not
    admin_key: str | None = None
    log_level: str = "info"
    log_format: str = "json"
    max_body_bytes: int = 1024 * 1024
    graceful_timeout: float = 4.0
    shutdown_delay: float = 0.0  # seconds between SIGTERM (/ready turns 503) and closing the listener
    key_cache_seconds: float = 5.0
    sqlite_synchronous: str = "NORMAL"
    pg_pool_size: int = 10
    pg_statement_timeout: float = 30.0  # seconds; 0: no limit
    pg_pool_timeout: float = 5.0  # seconds an operation may wait for a free connection before 503 database_busy
    pg_max_waiting: int = 1000  # operations that may wait for one at once; more are refused at once (database_busy)
    reputation_seconds: float = 300.0  # how often listings' reputations are reckoned again (core/reputation.py)
    pg_row_security: bool = True  # work as the role row-level security binds (store/tenancy.py)
    public_docs: bool = False
    max_message_bytes: int = 256 * 1024
    message_retention_seconds: float = 7 * 86_400
    # Retention of the other kinds (agora/core/retention.py): None follows the messages' retention; 0 keeps forever.
    event_retention_seconds: float | None = None
    a2a_retention_seconds: float | None = None
    task_retention_seconds: float = 0.0
    workflow_retention_seconds: float = 0.0
    usage_retention_seconds: float = 0.0
    offline_after_seconds: float = 90.0
    task_output_chunks: int = 10_000  # chunks a task's output keeps; past that, an overflow chunk counts the rest
    schedule_min_interval_seconds: float = 10.0  # the shortest interval a schedule may have (core/schedules)
    schedule_grace_seconds: float = 60.0  # a tick later than this (the hub was down) is missed: its policy decides
    schedule_retention_seconds: float = 30 * 86_400  # ticks of schedules' history are kept this long
    stream_send_timeout: float = 10.0
    mcp_gateway_refresh_seconds: float = 5.0
    public_url: str | None = None  # how clients reach this hub (cards carry it); unset: taken from each request
    a2a_blocking_timeout: float = 60.0
    a2a_fast_path: bool = True  # plain blocking A2A sends answered without the SDK's protobuf round trips (a2a/fast.py)
    a2a_public_rate: float = 600.0  # requests a minute per client address, to one public A2A agent
    a2a_grpc_port: int | None = None  # the A2A gRPC binding's port (agora/transports/a2a/grpc.py); None: not served
    # The agent a client reaches without naming one: gRPC calls naming no tenant, and the card at the hub's root (where
    # 0.3-era tools look); None: the hub's directory agent.
    a2a_default_agent: str | None = None
    a2a_strict_cards: bool = False  # a card request naming no A2A version gets the 1.0 card alone (cards.py says why)
    opentelemetry: bool = False  # FastAPI's native OpenTelemetry, through the globally configured providers
    mcp_extension: str | None = None  # module:attribute of extra MCP tools (agora/transports/mcp/extension.py)
    mcp_fast_path: bool = True  # plain stateless MCP requests answered without the SDK's machinery (mcp/fast.py)
    # The edge (agora/transports/edge): limits enforced before any door runs.
    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 5.0
    max_connections: int = 4096
    ws_max_frame_bytes: int = 256 * 1024
    trusted_proxies: str = "127.0.0.1"  # whose X-Forwarded-For / X-Forwarded-Proto are believed
    hsts_seconds: int = 0  # Strict-Transport-Security max-age; 0: not sent (set it when TLS ends in front of the hub)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API; none: no CORS answers at all
    # Abuse controls (agora/limits): overrides of the default rules, and the brake on failed authentication.
    rate_limits: tuple[str, ...] = ()
    auth_failure_rate: str = "10/m:20"
    auth_lockout_after: int = 100
    auth_lockout_seconds: float = 900.0
    egress_allow: tuple[str, ...] = ()  # networks/host names every caller may reach (agora/core/egress.py)
    egress_deny: tuple[str, ...] = ()  # networks/host names nobody may reach, the admin included
    egress_admin_exempt: bool = True  # the admin reaches any address not denied (local upstreams)
    # The web console (agora/transports/console): pages for people at /ui.
    console: bool = True
    console_session_seconds: float = 8 * 3600.0  # a sign-in lasts this long, then the console asks for the key again
    # OAuth for MCP clients (agora/core/oauth.py): the hub is its own authorization server; its consent page is the
    # console's, so it is served only with the console.
    oauth: bool = True
    oauth_access_token_seconds: float = 3600.0
    oauth_refresh_token_seconds: float = 30 * 86_400.0
    # Single sign-on (agora/core/oidc.py): people sign in to the console through an OpenID Connect provider, and its
    # JWT access tokens for the audience are accepted on every door. None: local accounts and keys only.
    oidc: OidcSettings | None = None
    # A payment provider's webhook (transports/rest/payments.py): Stripe's signing secret for its events; None: off.
    stripe_webhook_secret: str | None = None
    # Search (agora/search): the embedder that gives documents and queries their vectors; none: lexical search only.
    embedder: str = "none"  # none, local (the packaged model: the embeddings extra) or openai (any compatible endpoint)
    embedder_url: str | None = None  # openai: the API base, e.g. http://127.0.0.1:11434/v1
    embedder_model: str | None = None
    embedder_key: str | None = None
    # The marketplace chat (agora/chat): an OpenAI-compatible chat-completions endpoint plans with the catalog's tools;
    # none: the deterministic planner answers.
    llm_url: str | None = None  # the API base, e.g. http://127.0.0.1:11434/v1
    llm_model: str | None = None
    llm_key: str | None = None
    llm_timeout: float = 30.0  # seconds for each request to it; past that the deterministic planner answers

    @property
    def admin_key_file(self) -> Path:
        return self.data_dir / "admin.key"
