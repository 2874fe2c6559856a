"""Who may reach which agent's A2A front, settled before the SDK sees the request.

A private front wants an API key (or agent token) of the agent's tenant; a public one takes anyone, anonymous
callers included, limited to that agent's A2A surface and rate-limited per client address. An agent without an A2A
front, another tenant's private agent and an unknown one all answer 404 alike. A caller with a key is held to its
scopes as on every door: sending needs ``messaging:send``, cancelling and push configs ``tasks:write``, reading
``tasks:read`` (a viewer reads, an operator also sends and cancels).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from a2a.server.context import ServerCallContext
from a2a.server.routes import DefaultServerCallContextBuilder
from agora.core.auth import Principal, Scope
from agora.core.context import Hub
from agora.core.ids import is_id
from agora.core.services import a2a
from agora.limits import scope_source
from agora.store.ops import agents as agent_ops
from agora_sdk.errors import AgoraError, InvalidArgument, NotFound, Unauthenticated

ANONYMOUS = "anonymous"


@dataclass
class Front:
    """One request's view of one agent's A2A front: the agent, and who is calling (their tasks only)."""

    hub: Hub
    agent: dict[str, Any]
    caller: str
    principal: Principal | None = None  # None: an anonymous caller of a public front

    @property
    def reachable(self) -> bool:
        return self.agent["status"] in a2a.REACHABLE

    def require(self, scope: Scope, what: str) -> None:
        """Refuse a caller whose key lacks ``scope`` (permission_denied, naming the roles that allow it)."""
        if self.principal is not None:
            self.principal.require_scopes(frozenset({scope.value}), f"A2A {what}")

    async def hub_send(self, message: dict[str, Any], task_id: str) -> dict[str, Any]:
        self.require(Scope.messaging_send, "message/send")
        return await a2a.send(self.hub, self.agent, self.caller, message, task_id)

    async def get(self, task_id: str) -> dict[str, Any]:
        self.require(Scope.tasks_read, "tasks/get")
        return await a2a.get(self.hub, self.agent, self.caller, task_id)

    async def snapshot(self, task_id: str) -> tuple[dict[str, Any], int]:
        self.require(Scope.tasks_read, "tasks/resubscribe")
        return await a2a.snapshot(self.hub, self.agent, self.caller, task_id)

    async def cancel(self, task_id: str) -> dict[str, Any]:
        self.require(Scope.tasks_write, "tasks/cancel")
        return await a2a.cancel(self.hub, self.agent, self.caller, task_id)

    async def list(self, **filters: Any) -> tuple[list[dict[str, Any]], int]:
        self.require(Scope.tasks_read, "tasks/list")
        return await a2a.list_tasks(self.hub, self.agent, self.caller, **filters)


class FrontContext(DefaultServerCallContextBuilder):
    """The SDK's call context (headers kept: the A2A-Version check reads them) plus the admitted ``Front``."""

    def build(self, request: Request) -> ServerCallContext:
        context = super().build(request)
        context.state["front"] = request.scope["agora.front"]
        # The parameters as sent (HTTP+JSON's query, a JSON-RPC list's params), for checks the SDK's parsing skips.
        context.state["query"] = request.scope.get("agora.params") or request.query_params
        return context


async def admit(request: Request) -> Front:
    """The front this request may use, or the AgoraError that refuses it (401, 404, 429)."""
    ref = request.path_params["agent"]
    return await front_of(request.app.state.hub, ref, await caller(request, f"agent:{ref}"))


async def front_of(hub: Hub, ref: str, principal: Principal | None) -> Front:
    """The front of the agent ``ref`` (id or name) that ``principal`` (None: anonymous) may use; or 401, 404."""
    agent = await _agent(hub, ref, principal)
    if agent["a2a"].get("access") == "public":
        return Front(hub, agent, principal.label if principal else ANONYMOUS, principal)
    if principal is None:
        raise Unauthenticated("this agent's A2A front is private: send an API key of its tenant as a bearer token")
    if not principal.is_admin and principal.tenant_id != agent["tenant_id"]:
        raise _unknown(ref)
    return Front(hub, agent, principal.label, principal)


async def _agent(hub: Hub, ref: str, principal: Principal | None) -> dict[str, Any]:
    """The agent ``ref`` (id or name) with its A2A front on: the caller's tenant's first, else anyone's public one.

    Without a key, a private agent asked for by id (its card, public by id, says how to authenticate) is a 401;
    by name, a private agent is not there for strangers (404)."""
    own = [principal.tenant_scope()] if principal is not None else []  # an admin's scope is None: every tenant
    for scope, mine in [*((s, True) for s in own), (None, False)]:
        try:
            agent = await hub.store.read(agent_ops.resolve, scope, ref)
        except (NotFound, InvalidArgument):  # InvalidArgument: a name several tenants use; give the id
            continue
        if agent["a2a"] is None:
            continue
        if mine or agent["a2a"].get("access") == "public":
            return agent
        if principal is None and is_id(ref, "agent"):
            raise Unauthenticated("this agent's A2A front is private: send an API key of its tenant as a bearer token")
    raise _unknown(ref)


def _unknown(ref: str) -> NotFound:
    return NotFound(f"no A2A agent '{ref}' here", details={"agent": ref})


async def caller(request: Request, surface: str) -> Principal | None:
    """The principal of a request's key (None without one; anonymous callers are rate-limited per ``surface``)."""
    request.scope["state"]["tool"] = "a2a"
    principal = await principal_of(request.app.state.hub, request.headers.get("authorization"), scope_source(request.scope), surface)
    if principal is not None:
        request.scope["state"]["principal"] = principal.label
    return principal


async def principal_of(hub: Hub, authorization: str | None, source: str, surface: str) -> Principal | None:
    """Who sends ``authorization`` from ``source`` (None without a key: anonymous, rate-limited per ``surface``)."""
    if authorization is None:
        await hub.throttle.public_a2a(surface, source)
        return None
    return await hub.auth.authenticate(authorization, source)


Endpoint = Callable[[Request], Awaitable[Response]]


def admitted(endpoint: Endpoint, admit: Callable[[Request], Awaitable[Any]], refuse: Callable[[AgoraError], Response]) -> Endpoint:
    """``endpoint`` (an SDK route) behind ``admit``; a refusal is answered by ``refuse`` in the route's own dialect."""

    async def guarded(request: Request) -> Response:
        try:
            request.scope["agora.front"] = await admit(request)
        except AgoraError as exc:
            return refuse(exc)
        return await endpoint(request)

    return guarded
