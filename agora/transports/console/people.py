"""People (a tenant's admin, or the hub's): who is a member with which role; invite someone (their one-time sign-up
link shown once, here); change a member's role; take them out. Each form calls the catalog as the signed-in admin,
so a tenant's admin sees and changes only its own tenant's people."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora.transports.public_url import base_url
from agora_sdk.errors import AgoraError
from agora_sdk.wire.admin import Role

from .door import View, page

ROLES = [r.value for r in Role]


async def _page(view: View, status: int = 200, **context: Any) -> Response:
    tenant = view.request.query_params.get("tenant") or None
    people = await view.call("agora.users.list", tenant=tenant, limit=500)
    rows = [(user, m) for user in people.users for m in user.memberships]
    return view.render("people.html", status, rows=rows, roles=ROLES, tenant=tenant or "", nav="people", **{"invited": None, "notice": None, **context})


@page
async def people(view: View) -> Response:
    return await _page(view)


@page
async def invite(view: View) -> Response:
    form = await view.request.form()
    args = {name: str(form.get(name) or "").strip()[:254] or None for name in ("email", "role", "tenant")}
    try:
        made = await view.call("agora.users.create", **args)
    except AgoraError as exc:
        return await _page(view, exc.status, notice={"ok": False, "message": exc.message}, values=args)
    link = base_url(view.request, view.hub.settings.public_url) + made.signup_path if made.signup_path else None
    return await _page(view, invited={"email": made.user.email, "link": link, "expires_at": made.signup_expires_at})


@page
async def change(view: View) -> Response:
    """A member's role changed, or the member taken out (``action`` role or remove)."""
    form = await view.request.form()
    user, tenant = view.request.path_params["user_id"], str(form.get("tenant") or "")[:128] or None
    try:
        if view.request.path_params["action"] == "remove":
            done = await view.call("agora.memberships.remove", user=user, tenant=tenant)
            message = f"Taken out of {done.tenant_id}; {done.sessions_ended} session(s) ended."
        else:
            done = await view.call("agora.memberships.set", user=user, role=str(form.get("role") or ""), tenant=tenant)
            message = f"Now {done.role.value if done.role else 'nothing'} in {done.tenant_id}."
    except AgoraError as exc:
        return await _page(view, exc.status, notice={"ok": False, "message": exc.message})
    return await _page(view, notice={"ok": True, "message": message})


ROUTES: list[BaseRoute] = [
    Route("/ui/people", people, methods=["GET"]),
    Route("/ui/people/invite", invite, methods=["POST"]),
    Route("/ui/people/{user_id}/{action:str}", change, methods=["POST"]),
]
