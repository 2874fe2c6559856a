"""Live pages: ``/ui/live/<view>`` is an SSE stream of a page's fragments, re-rendered when the hub says something
changed and sent only if they did.

The stream parks on wake-up keys of its tenant (or every tenant's, for the admin) — its hub events and/or its
messages, as the view registered — and on its key's revocation, armed before it renders, so no change falls between a render and the wait. Bursts
are coalesced: after a render the stream waits ``COALESCE_SECONDS`` before it looks again, so a page costs the hub at
most a few renders a second however busy the hub is, and falls behind by well under a second. A stream whose session
ends (signed out, expired, key revoked) sends ``signed-out`` and closes; the page then asks the person to sign in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from agora.core.authn import credentials_key
from agora_sdk.errors import AgoraError

from .door import COOKIE, View, current_session, hub_of, sessions_of, signed_out
from .liveviews import LIVE
from .render import render

COALESCE_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


def sse_event(name: str, html: str) -> str:
    """One SSE event whose data is ``html`` (each line its own ``data:`` field, as the format wants)."""
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in html.splitlines() or [""]) + "\n"


async def live(request: Request) -> Response:
    live_view = LIVE.get(request.path_params["view"])
    session = await current_session(request)
    if session is None:
        return await signed_out(request)
    if live_view is None:
        return render("error.html", 404, view=None, title="Not found", message="There is no such live view.")
    fragments = live_view.fragments
    request.scope.setdefault("state", {})["principal"] = session.principal.label
    hub = hub_of(request)
    sessions = sessions_of(request)
    view = View(request, hub, session)
    principal = session.principal
    tenant = principal.tenant_scope()
    keys = [f"{source}:{'*' if tenant is None else tenant}" for source in live_view.wakes_on]
    if principal.key_hash:
        keys.append(credentials_key(principal.key_hash))
    params = request.query_params
    token = request.cookies.get(COOKIE, "")

    async def stream() -> AsyncIterator[str]:
        sent: dict[str, str] = {}
        yield "retry: 2000\n\n"
        while not hub.wakeups.draining:
            with hub.wakeups.armed(keys) as waiter:
                if await sessions.resume(token) is None:
                    yield "event: signed-out\ndata: \n\n"
                    return
                try:
                    rendered = await fragments(view, params)
                except AgoraError as exc:  # e.g. the agent on the page was deregistered
                    yield sse_event("gone", exc.message)
                    return
                for name, html in rendered.items():
                    if sent.get(name) != html:
                        sent[name] = html
                        yield sse_event(name, html)
                try:
                    await asyncio.wait_for(waiter.wait(), live_view.every or KEEPALIVE_SECONDS)
                except TimeoutError:  # nothing happened: say so (and look again: time passes on some views)
                    yield ": still here\n\n"
                    continue
            await asyncio.sleep(COALESCE_SECONDS)

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
