"""The signed-in person's own page: who they are, their role in each of their tenants and a switch between them, and
their second factor (TOTP: enrolled with a code from the app, answered with recovery codes shown once)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError

from .door import COOKIE, View, page, sessions_of
from .signin import signed_in


@page
async def account(view: View) -> Response:
    return await _page(view)


async def _page(view: View, status: int = 200, **factor: object) -> Response:
    me = await view.call("agora.users.me")
    return view.render("account.html", status, me=me, nav="account", **factor)


@page
async def new_factor(view: View) -> Response:
    """A new secret to enrol, shown with a field for the app's first code."""
    return await _page(view, enrol=await view.call("agora.users.new_second_factor"))


@page
async def set_factor(view: View) -> Response:
    form = await view.request.form()
    secret = str(form.get("secret") or "")[:64] or None
    code = str(form.get("code") or "").strip()[:32]
    try:
        done = await view.call("agora.users.set_second_factor", secret=secret, code=code)
    except AgoraError as exc:  # a wrong code: the same secret again, to try the next code
        enrol = {"secret": secret, "otpauth_uri": None} if secret else None
        return await _page(view, exc.status, enrol=enrol, factor_error=exc.message)
    return await _page(view, recovery=done.recovery_codes, factor_done=done.two_factor)


@page
async def switch_tenant(view: View) -> Response:
    """Go on as the same person in another of their tenants (with their role there); the current session ends."""
    form = await view.request.form()
    tenant = str(form.get("tenant") or "")[:128]
    sessions = sessions_of(view.request)
    token, session = await sessions.switch(view.request.cookies.get(COOKIE, ""), view.session, tenant)
    return signed_in(view.request, "/ui", token, session)


ROUTES: list[BaseRoute] = [
    Route("/ui/account", account, methods=["GET"]),
    Route("/ui/account/tenant", switch_tenant, methods=["POST"]),
    Route("/ui/account/two-factor/new", new_factor, methods=["POST"]),
    Route("/ui/account/two-factor", set_factor, methods=["POST"]),
]
