"""The OAuth consent page: a person lets an MCP client act as one of their keys (``core/oauth.py``).

The client's ``/authorize`` request lands here with an unguessable request token. Signed in to the console, the person
allows the client as the key they signed in with; otherwise they paste a key or agent token, checked like a sign-in
(the brake on guessing included). Either way the browser goes back to the client's registered redirect URI with a
one-time code, or with ``access_denied``. The form must come from this page (``Sec-Fetch-Site``), and the page's CSP
lets the form's redirect reach the client's redirect URI and nothing else.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from agora.core.oauth import Consent
from agora.limits import scope_source
from agora.transports.oauth import server_of
from agora_sdk.errors import PermissionDenied, RateLimited, Unauthenticated

from .door import current_session, hub_of
from .render import CSP, render

_KEY_FIELD_MAX = 512
_SOURCE = re.compile(r"[a-z][a-z0-9+.-]*:(//[A-Za-z0-9.\-]+(:[0-9]+)?|//\[[0-9a-fA-F:.]+\](:[0-9]+)?)?")
_GONE = "This sign-in request is over: it was answered, it expired, or it never existed. Start again from your MCP client."


def _headers(consent: Consent) -> dict[str, str]:
    """The console's CSP, with the form allowed to end at the client's redirect URI (Chromium checks a form's
    redirects against form-action too)."""
    parts = urlsplit(consent.redirect_uri)
    target = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
    if not _SOURCE.fullmatch(target):  # nothing that could end the directive or add another
        return {}
    return {"content-security-policy": CSP.replace("form-action 'self'", f"form-action 'self' {target}")}


async def _page(request: Request, request_token: str, status: int = 200, error: str | None = None) -> Response:
    consent = await server_of(request).consent(request_token)
    if consent is None:
        return render("error.html", 410, view=None, title="Sign-in request over", message=_GONE)
    session = await current_session(request)
    return render(
        "oauth_consent.html", status, _headers(consent), view=None, consent=consent, request_token=request_token,
        signed_in=session.principal if session else None, error=error,
    )


async def consent_form(request: Request) -> Response:
    return await _page(request, request.query_params.get("request", ""))


async def consent_answer(request: Request) -> Response:
    form = await request.form()
    request_token = str(form.get("request") or "")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return render("error.html", 403, view=None, title="Refused", message="Answer from the hub's own consent page.")
    server = server_of(request)
    if form.get("decision") == "deny":
        target = await server.deny(request_token)
    else:
        key = str(form.get("key") or "").strip()
        try:
            if key:
                if len(key) > _KEY_FIELD_MAX:
                    raise Unauthenticated("too long for a key")
                principal = await hub_of(request).auth.principal_for_key(key, scope_source(request.scope))
            else:
                session = await current_session(request)
                if session is None:
                    return await _page(request, request_token, 400, "Paste an API key or an agent token.")
                principal = session.principal
            target = await server.approve(request_token, principal, request.scope.get("state", {}).get("request_id", "console"))
        except Unauthenticated:
            return await _page(request, request_token, 401, "That key is not valid: it is unknown or was revoked.")
        except (PermissionDenied, RateLimited) as exc:
            return await _page(request, request_token, exc.status, exc.message)
    if target is None:
        return render("error.html", 410, view=None, title="Sign-in request over", message=_GONE)
    return RedirectResponse(target, 303)
