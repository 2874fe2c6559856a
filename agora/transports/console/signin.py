"""Signing in (an API key or agent token exchanged for a session cookie) and out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agora.limits import scope_source
from agora_sdk.errors import RateLimited, Unauthenticated

from .door import COOKIE, CSRF_COOKIE, View, current_session, page, safe_next, sessions_of
from .render import render

_KEY_FIELD_MAX = 512


async def sign_in_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if await current_session(request) is not None:
        return RedirectResponse(target, 303)
    return render("sign_in.html", view=None, next=target, error=None)


async def sign_in(request: Request) -> Response:
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    key = str(form.get("key") or "").strip()
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return render("sign_in.html", 403, view=None, next=target, error="Sign in from the console's own page.")
    if not key or len(key) > _KEY_FIELD_MAX:
        return render("sign_in.html", 400, view=None, next=target, error="Paste an API key or an agent token.")
    sessions = sessions_of(request)
    try:
        token, session = await sessions.sign_in(key, scope_source(request.scope))
    except Unauthenticated:
        return render("sign_in.html", 401, view=None, next=target, error="That key is not valid: it is unknown or was revoked.")
    except RateLimited as exc:
        return render("sign_in.html", 429, view=None, next=target, error=exc.message)
    response = RedirectResponse(target, 303)
    secure = request.url.scheme == "https"
    max_age = int(sessions.lifetime.total_seconds())
    response.set_cookie(COOKIE, token, max_age=max_age, path="/ui", secure=secure, httponly=True, samesite="strict")
    response.set_cookie(CSRF_COOKIE, session.csrf_token, max_age=max_age, path="/ui", secure=secure, httponly=False, samesite="strict")
    return response


@page
async def sign_out(view: View) -> Response:
    await sessions_of(view.request).sign_out(view.request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/ui/sign-in", 303)
    for name in (COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/ui", samesite="strict")
    return response
