"""What every console request goes through: its session (the cookie), CSRF on a change, and catalog calls made as
the signed-in principal — so tenancy, scopes and agent identity hold here exactly as on the REST door.

A request without a live session is sent to the sign-in page (a browser navigation), or answered 401 with a
fragment that says so in place (an htmx request: the form stays as the person filled it, to send again once signed
in). A foreign or unknown id is the catalog's 404, shown as the console's not-found page.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agora.core.auth import Principal, PrincipalKind
from agora.core.context import Hub
from agora.core.sessions import ConsoleSessions, Session
from agora.limits import scope_source
from agora_sdk.errors import AgoraError, NotFound, PermissionDenied, RateLimited

from .render import render
from .shared_reads import SharedReads

COOKIE = "agora_console"  # the session token: HttpOnly, never seen by scripts
CSRF_COOKIE = "agora_csrf"  # the session's CSRF token, which the console's script copies into a header
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class View:
    """One console request with a live session."""

    request: Request
    hub: Hub
    session: Session
    woken_at: float | None = None  # a live region's re-render: its reads may be shared (see shared_reads.py)

    @property
    def principal(self) -> Principal:
        return self.session.principal

    @property
    def is_admin(self) -> bool:
        return self.principal.kind is PrincipalKind.admin

    @property
    def partial(self) -> bool:
        """An htmx request: it wants the fragment it targets, not the whole page — unless htmx is restoring a page
        from history (Back to a pushed URL: its cache is off), which wants the whole page."""
        headers = self.request.headers
        return headers.get("hx-request") == "true" and headers.get("hx-history-restore-request") != "true"

    async def call(self, tool: str, **args: Any) -> Any:
        """A catalog call as the signed-in principal; its AgoraError is the caller's to show."""
        if self.woken_at is not None and tool in self.hub.catalog and self.hub.catalog.get(tool).read_only:
            key = (self.principal, tool, repr(sorted(args.items())))
            return await shared_reads_of(self.request).read(key, self.woken_at, lambda: self._call(tool, args))
        return await self._call(tool, args)

    async def _call(self, tool: str, args: dict[str, Any]) -> Any:
        request_id = self.request.scope.get("state", {}).get("request_id", "console")
        _, result, _ = await self.hub.catalog.call(self.hub, self.principal, tool, args, request_id)
        return result

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        return render(template, status_code, view=self, **context)


Handler = Callable[[View], Awaitable[Response]]


def hub_of(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


def shared_reads_of(request: Request) -> SharedReads:
    return request.app.state.console_reads  # type: ignore[no-any-return]


def sessions_of(request: Request) -> ConsoleSessions:
    sessions = hub_of(request).sessions
    assert sessions is not None, "the console is mounted only when the hub keeps sessions"
    return sessions


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A console endpoint: resolves the session, checks CSRF on a change, renders catalog errors as pages."""

    async def endpoint(request: Request) -> Response:
        hub = hub_of(request)
        session = await current_session(request)
        if session is None:
            return await signed_out(request)
        request.scope.setdefault("state", {})["principal"] = session.principal.label
        view = View(request, hub, session)
        if request.method not in _SAFE_METHODS and not await csrf_ok(request, session):
            return view.render("error.html", 403, title="Refused", message="This form was not sent by the console (a missing or stale CSRF token). Reload the page and try again.")
        try:
            return await handler(view)
        except NotFound:
            return view.render("error.html", 404, title="Not found", message="There is nothing here, or it is not yours to see.")
        except PermissionDenied as exc:
            return view.render("error.html", 403, title="Not allowed", message=exc.message)
        except AgoraError as exc:
            return view.render("error.html", exc.status, title="That did not work", message=exc.message)

    endpoint.__name__ = handler.__name__
    return endpoint


async def current_session(request: Request) -> Session | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    return await sessions_of(request).resume(token)


async def signed_out(request: Request) -> Response:
    """No live session: a cookie that names none costs its address an anonymous request (a guessed cookie is a
    guessed key), then the person is sent to sign in, or told so in place."""
    if request.cookies.get(COOKIE):
        try:
            await hub_of(request).throttle.anonymous(scope_source(request.scope))
        except RateLimited as exc:
            return render("error.html", 429, view=None, title="Too many requests", message=exc.message)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    sign_in = f"/ui/sign-in?next={quote(target, safe='')}"
    if request.headers.get("hx-request") == "true":
        return render("_signed_out.html", 401, sign_in=sign_in)
    return RedirectResponse(sign_in, 303)


async def csrf_ok(request: Request, session: Session) -> bool:
    """A change must carry the session's CSRF token (header or form field) and must not come from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    return given is not None and hmac.compare_digest(given.encode(), session.csrf_token.encode())


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only, never another site (``//evil``, ``/\\evil``)."""
    if not target or not target.startswith("/ui") or target.startswith(("//", "/\\")) or "\\" in target:
        return "/ui"
    return target
