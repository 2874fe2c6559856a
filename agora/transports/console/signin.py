"""Signing in — an API key or agent token, or a person's email and password (and second factor) — exchanged for a
session cookie; signing up through a one-time link; switching a person's tenant; signing out."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agora.core.sessions import Session
from agora.limits import scope_source
from agora_sdk.errors import AgoraError, RateLimited, Unauthenticated

from .door import COOKIE, CSRF_COOKIE, View, current_session, page, safe_next, sessions_of
from .render import render

_KEY_FIELD_MAX = 512
_FIELD_MAX = 512  # an email, a password, a code: longer is no one's


async def sign_in_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if await current_session(request) is not None:
        return RedirectResponse(target, 303)
    return render("sign_in.html", view=None, next=target, error=None)


async def sign_in(request: Request) -> Response:
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return render("sign_in.html", 403, view=None, next=target, error="Sign in from the console's own page.")
    if "email" in form:
        return await _sign_in_person(request, form, target)
    key = str(form.get("key") or "").strip()
    if not key or len(key) > _KEY_FIELD_MAX:
        return render("sign_in.html", 400, view=None, next=target, error="Paste an API key or an agent token.")
    try:
        token, session = await sessions_of(request).sign_in(key, scope_source(request.scope))
    except Unauthenticated:
        return render("sign_in.html", 401, view=None, next=target, error="That key is not valid: it is unknown or was revoked.")
    except RateLimited as exc:
        return render("sign_in.html", 429, view=None, next=target, error=exc.message)
    return signed_in(request, target, token, session)


async def _sign_in_person(request: Request, form: Any, target: str) -> Response:
    email, password, code = (str(form.get(name) or "").strip() for name in ("email", "password", "code"))
    again = {"email": email[:_FIELD_MAX]}
    if not email or not password or max(len(email), len(password), len(code)) > _FIELD_MAX:
        return render("sign_in.html", 400, view=None, next=target, person_error="Give your email and password.", values=again)
    try:
        token, session = await sessions_of(request).sign_in_person(email, password, code, scope_source(request.scope))
    except Unauthenticated as exc:
        return render("sign_in.html", 401, view=None, next=target, person_error=f"Not signed in: {exc.message}.", values=again)
    except AgoraError as exc:  # rate-limited or locked out; a member of no tenant yet
        return render("sign_in.html", exc.status, view=None, next=target, person_error=exc.message, values=again)
    return signed_in(request, target, token, session)


def signed_in(request: Request, target: str, token: str, session: Session) -> Response:
    """Go on to ``target`` with the session's cookies set."""
    response = RedirectResponse(target, 303)
    secure = request.url.scheme == "https"
    max_age = int(sessions_of(request).lifetime.total_seconds())
    response.set_cookie(COOKIE, token, max_age=max_age, path="/ui", secure=secure, httponly=True, samesite="strict")
    response.set_cookie(CSRF_COOKIE, session.csrf_token, max_age=max_age, path="/ui", secure=secure, httponly=False, samesite="strict")
    return response


async def sign_up_form(request: Request) -> Response:
    """The page a one-time sign-up link opens: set a password (the link is taken only when the form is sent)."""
    token = request.query_params.get("token", "")[:_FIELD_MAX]
    email = await sessions_of(request).link_email(token)
    if email is None:
        return render("sign_up.html", 404, view=None, token="", email=None, error=LINK_GONE)
    return render("sign_up.html", view=None, token=token, email=email, error=None)


LINK_GONE = "This sign-up link is not valid: it was used, it expired, or it never existed. Ask your tenant's admin for a new one."


async def sign_up(request: Request) -> Response:
    form = await request.form()
    token, password, again = (str(form.get(name) or "")[:_FIELD_MAX] for name in ("token", "password", "again"))
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return render("sign_up.html", 403, view=None, token="", email=None, error="Sign up from the console's own page.")
    sessions = sessions_of(request)
    email = await sessions.link_email(token)
    if email is None:
        return render("sign_up.html", 404, view=None, token="", email=None, error=LINK_GONE)
    if password != again:
        return render("sign_up.html", 400, view=None, token=token, email=email, error="The two passwords differ.")
    try:
        session_token, session = await sessions.sign_up(token, password)
    except AgoraError as exc:
        return render("sign_up.html", exc.status, view=None, token=token, email=email, error=exc.message)
    return signed_in(request, "/ui/account", session_token, session)


@page
async def sign_out(view: View) -> Response:
    await sessions_of(view.request).sign_out(view.request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/ui/sign-in", 303)
    for name in (COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/ui", samesite="strict")
    return response
