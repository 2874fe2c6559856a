"""What every tool handler receives: the caller and the hub's long-lived parts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from agora_sdk.wire.agents import ServiceSummary

from .answered import AnsweredCalls
from .auth import Principal
from .clock import Clock
from .egress import EgressPolicy
from .handoff import Handoffs
from .presence import LiveAgents

if TYPE_CHECKING:
    from agora.bus import Notifier
    from agora.catalog import Catalog
    from agora.chat.llm import LanguageModel
    from agora.config import Settings
    from agora.core.activity import Activity
    from agora.core.authn import Authenticator
    from agora.core.rendered import RenderedMessages
    from agora.core.services.tool_runs import ToolRuns
    from agora.core.oauth import OAuthServer
    from agora.core.oidc import IdentityProvider
    from agora.core.sessions import ConsoleSessions
    from agora.core.wakeups import Wakeups
    from agora.gateway import McpGateway
    from agora.limits import Throttle
    from agora.search.engine import SearchEngine
    from agora.store import Store


@dataclass
class HaltState:
    """An emergency halt: stored in ``system_state``, mirrored here so every call can check it cheaply."""

    halted: bool = False
    override_id: str | None = None
    reason: str = ""
    since: datetime | None = None


@dataclass
class Hub:
    """The parts of the running hub that outlive a request."""

    settings: Settings
    store: Store
    notifier: Notifier
    clock: Clock
    auth: Authenticator
    throttle: Throttle
    catalog: Catalog
    wakeups: Wakeups
    rendered: RenderedMessages  # shared messages as live streams are lent them, rendered once
    activity: Activity  # what happened here, per ten seconds, until it is written (agora.query.activity)
    version: str
    services: list[ServiceSummary] = field(default_factory=list)  # the catalog, as registration returns it
    halt: HaltState = field(default_factory=HaltState)
    started_at: datetime | None = None
    stopping: bool = False  # SIGTERM came: /ready answers 503 so proxies stop sending work here before it stops listening
    gateway: McpGateway | None = None  # external MCP servers (started with the hub's background tasks)
    egress: EgressPolicy = field(default_factory=EgressPolicy)  # where it may connect on a caller's behalf
    sessions: ConsoleSessions | None = None  # web console sign-ins (None: the console is off)
    oauth: OAuthServer | None = None  # the OAuth authorization server for MCP clients (None: off)
    sso: IdentityProvider | None = None  # the OpenID Connect provider people sign in with (None: not set up)
    handoffs: Handoffs = field(default_factory=Handoffs)  # work channels new tasks can be handed to, on this replica
    answered: AnsweredCalls = field(default_factory=AnsweredCalls)  # keyed calls' answers, for their resends
    live: LiveAgents = field(default_factory=LiveAgents)  # agents with a live stream here, whose presence is written
    schedule_wake: asyncio.Event = field(default_factory=asyncio.Event)  # a schedule changed here: the scheduler looks now
    llm: LanguageModel | None = None  # the marketplace chat's language model (--llm-url); None: deterministic only
    tool_runs: ToolRuns = field(init=False, repr=False)  # the calls this replica runs in the background (set at start)
    search: SearchEngine = field(init=False, repr=False)  # embedder, vectors in memory, vocabulary (set at start)


@dataclass
class CallContext:
    hub: Hub
    principal: Principal
    request_id: str
    tool: str
    warnings: list[str] = field(default_factory=list)
    accepted: bool = False  # the result is work still under way in the background: the REST door answers 202

    @property
    def store(self) -> Store:
        return self.hub.store

    @property
    def clock(self) -> Clock:
        return self.hub.clock

    @property
    def notifier(self) -> Notifier:
        return self.hub.notifier
