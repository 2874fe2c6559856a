"""Assembling the hub: store, notifier, catalog and doors, started and stopped by the ASGI lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import timedelta
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from agora import __version__
from agora.bus import Event, open_notifier
from agora.catalog import Catalog, build_catalog
from agora.catalog.tools.discovery import catalog_rows
from agora.chat.llm import LanguageModel
from agora.config import Settings
from agora.core.auth import generate_key
from agora.core.authn import REVOKED, Authenticator, revocation_wake_keys
from agora.core.clock import Clock
from agora.core import housekeeping
from agora.core.schedules import firing as scheduler
from agora.core.activity import Activity
from agora.core.context import Hub
from agora.core.egress import EgressPolicy
from agora.core.rendered import RenderedMessages
from agora.core.oauth import OAuthServer
from agora.core.accounts import Accounts
from agora.core.sessions import ConsoleSessions
from agora.core.services.messaging import message_json
from agora.core.services.a2a_bridge import Bridge
from agora.core.services.tool_runs import ToolRuns
from agora.core.services.a2a_push import PushDeliverer
from agora.core.services.admin import load_halt
from agora.core.wakeups import Wakeups
from agora.gateway import McpGateway
from agora.search.embedders import make_embedder
from agora.observability.loop_watch import LoopWatch
from agora.search.engine import SearchEngine
from agora.store import open_store
from agora.store.ops import services as service_ops
from agora.transports import a2a, console, live, mcp, oauth, rest
from agora.transports.rest.errors import install as install_error_handlers
from agora.transports.rest.dispatch import ToolDispatch
from agora.transports.edge import EdgeMiddleware
from agora.limits import Policy, Throttle, open_buckets
from agora_sdk.tls import tls_context
from agora_sdk.wire.agents import ServiceSummary

log = logging.getLogger("agora")

# What a browser page on an allowed origin may send and read (bearer keys, not cookies: no credentials mode).
CORS_REQUEST_HEADERS = ["Authorization", "Content-Type", "X-Request-ID", "Last-Event-ID", "A2A-Version", "A2A-Extensions",
                        "Mcp-Session-Id", "Mcp-Protocol-Version"]  # fmt: skip
CORS_EXPOSED_HEADERS = ["X-Request-ID", "Retry-After", "Agora-Warnings", "Mcp-Session-Id", "Deprecation", "Sunset", "Link"]

def bootstrap_admin_key(settings: Settings) -> tuple[str, Path | None]:
    """The admin key: AGORA_ADMIN_KEY, else ``<data-dir>/admin.key``, created (mode 0600) on first start."""
    if settings.admin_key:
        return settings.admin_key, None
    path = settings.admin_key_file
    if path.exists():
        return path.read_text().strip(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, path


def _background(hub: Hub) -> list[asyncio.Task[None]]:
    return [
        *hub.search.start(),
        asyncio.create_task(hub.wakeups.run(), name="wakeups"),
        asyncio.create_task(hub.wakeups.poll_while_the_bus_is_down(), name="bus-down-poll"),
        asyncio.create_task(LoopWatch().run(), name="loop-watch"),
        asyncio.create_task(PushDeliverer(hub).run(), name="a2a-push"),
        asyncio.create_task(Bridge(hub).run(), name="a2a-bridge"),
        asyncio.create_task(scheduler.run(hub), name="schedules"),
        *housekeeping.start(hub),
    ]


def create_app(settings: Settings) -> FastAPI:
    catalog = build_catalog()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = await start_hub(settings, catalog)
        app.state.hub = hub
        await asyncio.to_thread(tls_context)  # made here, off the event loop, before any client needs it
        tasks = _background(hub)
        try:
            if hub.gateway is not None:
                hub.gateway.watch(mcp_door.server.changes.changed)
                await hub.gateway.start()
            grpc_server = None
            if settings.a2a_grpc_port:
                from agora.transports.a2a import grpc  # grpcio is loaded only by a hub that serves the binding

                grpc_server = await grpc.start(lambda: hub, settings)
            try:
                async with mcp_door.running():
                    yield
            finally:
                if grpc_server is not None:
                    await grpc_server.stop(settings.graceful_timeout)
        finally:
            await hub.tool_runs.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if hub.gateway is not None:
                await hub.gateway.stop()
            await mcp_door.server.changes.close()
            await mcp_door.server.legacy_tasks.close()
            await hub.search.close()
            if hub.llm is not None:
                await hub.llm.close()
            if hub.sso is not None:
                await hub.sso.close()
            await hub.notifier.close()
            await hub.throttle.buckets.close()
            await hub.store.close()
            log.info("hub stopped")

    app = FastAPI(
        title="Agora",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        redirect_slashes=False,  # '/agora/' is a 404 like any unknown path, not a redirect
        # Off unless asked for: FastAPI looked up the global OpenTelemetry providers on every request (~3% of a send).
        telemetry=None if settings.opentelemetry else {"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    live.mount(app)
    mcp_door = mcp.mount(app, catalog, settings)
    a2a.mount(app, settings)
    console.mount(app, settings)
    oauth.mount(app, settings)
    app.add_middleware(ToolDispatch, endpoints=rest.mount(app, catalog, public_docs=settings.public_docs), doors={("POST", mcp.PATH): mcp_door})
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    app.add_middleware(EdgeMiddleware, settings=settings)  # added last: the outermost, it sees (and logs) every request
    return app


async def start_hub(settings: Settings, catalog: Catalog) -> Hub:
    clock = Clock()
    store = open_store(
        settings.database_url,
        settings.data_dir,
        sqlite_synchronous=settings.sqlite_synchronous,
        pg_pool_size=settings.pg_pool_size,
        pg_statement_timeout=settings.pg_statement_timeout,
        pg_pool_timeout=settings.pg_pool_timeout,
        pg_max_waiting=settings.pg_max_waiting,
        pg_row_security=settings.pg_row_security,
    )
    await store.start()
    await clock.follow_database(store)
    admin_key, key_file = bootstrap_admin_key(settings)
    if key_file is not None:
        log.info(
            "admin key is in the data directory; the CLI and SDK find it there (or export AGORA_API_KEY)",
            extra={"admin_key_file": str(key_file)},
        )
    await store.write(service_ops.sync_catalog, catalog_rows(catalog), clock.now())
    notifier = open_notifier(settings.redis_url, channel=settings.redis_channel)
    await notifier.start()
    policy = Policy.from_flags(
        settings.rate_limits,
        auth_failures=settings.auth_failure_rate,
        lockout_after=settings.auth_lockout_after,
        lockout_seconds=settings.auth_lockout_seconds,
        a2a_public_per_minute=settings.a2a_public_rate,
    )
    throttle = Throttle(open_buckets(settings.redis_url, prefix=f"{settings.redis_channel}:limits:"), policy)
    egress = EgressPolicy.parse(settings.egress_allow, settings.egress_deny, settings.egress_admin_exempt)
    hub = Hub(
        settings=settings,
        store=store,
        notifier=notifier,
        clock=clock,
        auth=Authenticator(store, admin_key, ttl=settings.key_cache_seconds, throttle=throttle, notifier=notifier, clock=clock),
        throttle=throttle,
        catalog=catalog,
        wakeups=Wakeups(notifier),
        rendered=RenderedMessages(message_json),
        activity=Activity(clock),
        version=__version__,
        services=[ServiceSummary(name=t.name, version=t.version, status=t.status.value) for t in catalog],
        started_at=clock.now(),
        gateway=McpGateway(store, refresh_seconds=settings.mcp_gateway_refresh_seconds, egress=egress, now=clock.now),
        egress=egress,
    )
    hub.tool_runs = ToolRuns(hub)
    hub.search = SearchEngine(store, clock.now, make_embedder(settings.embedder, settings.embedder_url, settings.embedder_model, settings.embedder_key))
    if settings.llm_url and settings.llm_model:
        hub.llm = LanguageModel(settings.llm_url, settings.llm_model, settings.llm_key, settings.llm_timeout)
    if settings.oidc is not None:  # (Authlib and joserfc are imported by such a hub alone)
        from agora.core.oidc import IdentityProvider

        hub.sso = hub.auth.sso = IdentityProvider(settings.oidc)
    if settings.console:
        lifetime = timedelta(seconds=settings.console_session_seconds)
        hub.sessions = ConsoleSessions(store, hub.auth, clock, lifetime, Accounts(store, hub.throttle, clock))
    if settings.console and settings.oauth:
        hub.oauth = OAuthServer(store, hub.auth, clock, settings.oauth_access_token_seconds, settings.oauth_refresh_token_seconds)
    def revoked(event: Event) -> None:
        hub.auth.revoked(event)
        hub.wakeups.wake(revocation_wake_keys(event))  # live streams look at their key again

    hub.wakeups.on(REVOKED, revoked)
    await load_halt(hub)
    log.info("hub ready", extra={"store": store.url_for_display, "tools": len(catalog)})
    return hub


class HubServer(uvicorn.Server):
    """uvicorn's server, telling the hub the moment shutdown begins. uvicorn waits for requests in flight (up to
    ``--graceful-timeout``) before the app hears of it, then cancels them: a parked long-poll answered 500. Drained
    first, it answers at once with what there is (no task, no message).

    Before any of that, for ``--shutdown-delay`` seconds, the hub keeps serving everything while ``/ready`` answers
    503: a proxy's or Kubernetes' health checks take it out of the rotation while it still accepts connections, so no
    request is sent to a replica that has stopped listening (which a proxy can retry only if it kept the body)."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        hub: Hub | None = getattr(self.config.app.state, "hub", None)
        if hub is not None:
            hub.stopping = True
            if hub.settings.shutdown_delay > 0:
                log.info("leaving the rotation", extra={"seconds": hub.settings.shutdown_delay})
                await asyncio.sleep(hub.settings.shutdown_delay)
            hub.wakeups.drain()
        await super().shutdown(sockets)
