"""Signing in — an API key or agent token, or a person's email and password (and second factor) — exchanged for a
session cookie; signing up through a one-time link; switching a person's tenant; signing out."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agora.core.sessions import Session
from agora.limits import scope_source
from agora_sdk.errors import AgoraError, RateLimited, Unauthenticated

from agora.transports.public_url import base_url

from .door import COOKIE, CSRF_COOKIE, View, current_session, hub_of, page, safe_next, sessions_of
from .render import render

_KEY_FIELD_MAX = 512
_FIELD_MAX = 512  # an email, a password, a code: longer is no one's


async def sign_in_form(request: Request) -> Response:
    target = safe_next(request.query_params.get("next"))
    if await current_session(request) is not None:
        return RedirectResponse(target, 303)
    return _sign_in_page(request, target)


def _sign_in_page(request: Request, target: str, status: int = 200, **errors: Any) -> Response:
    sso = hub_of(request).sso
    return render("sign_in.html", status, view=None, next=target, sso_name=sso.settings.display_name if sso else None, **errors)


SSO_COOKIE = "agora_sso"  # binds a single sign-on under way to the browser that began it


async def sso_start(request: Request) -> Response:
    """Off to the identity provider's login page, the request (state, nonce, PKCE verifier) kept for its return."""
    sso = hub_of(request).sso
    if sso is None:
        return render("error.html", 404, view=None, title="Not found", message="This hub has no single sign-on.")
    target = safe_next(request.query_params.get("next"))
    try:
        browser, url = await sessions_of(request).start_sso(sso, target, _callback_url(request))
    except AgoraError as exc:  # the provider is down: keys and passwords still work
        return _sign_in_page(request, target, exc.status, sso_error=f"Single sign-on is not available now: {exc.message}")
    response = RedirectResponse(url, 303)
    # Lax, not strict: the provider sends the browser back with a top-level GET from its own site.
    response.set_cookie(SSO_COOKIE, browser, max_age=600, path="/ui/oidc", secure=request.url.scheme == "https", httponly=True, samesite="lax")
    return response


async def sso_callback(request: Request) -> Response:
    """The provider sent the person back: a session for them, or a page saying why not (nothing changed)."""
    sso = hub_of(request).sso
    if sso is None:
        return render("error.html", 404, view=None, title="Not found", message="This hub has no single sign-on.")
    params = request.query_params
    if params.get("error"):
        why = str(params.get("error_description") or params["error"])[:300]
        return _sign_in_page(request, "/ui", 401, sso_error=f"The identity provider did not sign you in: {why}")
    try:
        token, session, target = await sessions_of(request).finish_sso(
            sso, params.get("state", "")[:512], params.get("code", "")[:2048], request.cookies.get(SSO_COOKIE, "")[:128],
            _callback_url(request),
        )  # fmt: skip
    except AgoraError as exc:
        return _sign_in_page(request, "/ui", exc.status, sso_error=f"Not signed in: {exc.message}")
    # A page, not a redirect: the session's cookies are SameSite=strict, and a redirect that began on the provider's
    # site would not carry them to the console.
    response = signed_in(request, target, token, session, render("_continue.html", view=None, target=safe_next(target)))
    response.delete_cookie(SSO_COOKIE, path="/ui/oidc")
    return response


def _callback_url(request: Request) -> str:
    return base_url(request, hub_of(request).settings.public_url) + "/ui/oidc/callback"


async def sign_in(request: Request) -> Response:
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return _sign_in_page(request, target, 403, error="Sign in from the console's own page.")
    if "email" in form:
        return await _sign_in_person(request, form, target)
    key = str(form.get("key") or "").strip()
    if not key or len(key) > _KEY_FIELD_MAX:
        return _sign_in_page(request, target, 400, error="Paste an API key or an agent token.")
    try:
        token, session = await sessions_of(request).sign_in(key, scope_source(request.scope))
    except Unauthenticated:
        return _sign_in_page(request, target, 401, error="That key is not valid: it is unknown or was revoked.")
    except RateLimited as exc:
        return _sign_in_page(request, target, 429, error=exc.message)
    return signed_in(request, target, token, session)


async def _sign_in_person(request: Request, form: Any, target: str) -> Response:
    email, password, code = (str(form.get(name) or "").strip() for name in ("email", "password", "code"))
    again = {"email": email[:_FIELD_MAX]}
    if not email or not password or max(len(email), len(password), len(code)) > _FIELD_MAX:
        return _sign_in_page(request, target, 400, person_error="Give your email and password.", values=again)
    try:
        token, session = await sessions_of(request).sign_in_person(email, password, code, scope_source(request.scope))
    except Unauthenticated as exc:
        return _sign_in_page(request, target, 401, person_error=f"Not signed in: {exc.message}.", values=again)
    except AgoraError as exc:  # rate-limited or locked out; a member of no tenant yet
        return _sign_in_page(request, target, exc.status, person_error=exc.message, values=again)
    return signed_in(request, target, token, session)


def signed_in(request: Request, target: str, token: str, session: Session, response: Response | None = None) -> Response:
    """Go on to ``target`` (or answer ``response``) with the session's cookies set."""
    response = response or RedirectResponse(target, 303)
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
    """End the session; a single sign-on's also at the provider, which sends the person back to the sign-in page."""
    id_token = await sessions_of(view.request).sign_out(view.request.cookies.get(COOKIE, ""))
    sso, target = view.hub.sso, "/ui/sign-in"
    if sso is not None and id_token is not None:
        target = await sso.end_session_url(id_token, base_url(view.request, view.hub.settings.public_url) + "/ui/sign-in") or target
    response = RedirectResponse(target, 303)
    for name in (COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/ui", samesite="strict")
    return response
