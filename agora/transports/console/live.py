"""Live pages: ``/ui/live/<view>`` is an SSE stream of a page's fragments, re-rendered when the hub says something
changed and sent only if they did.

The stream stays armed on wake-up keys of its tenant (or every tenant's, for the admin) — its hub events and/or its
messages, as the view registered — and on its key's revocation, so no change falls between a render and the next
wait. Bursts are coalesced into slots of ``COALESCE_SECONDS`` on the process's clock: a woken stream renders at the
end of its slot, so a page costs the hub at most a few renders a second however busy the hub is and falls behind by
well under a second, and every tab woken in one slot renders at once and shares its catalog reads
(``shared_reads.py``). A stream whose session ends (signed out, expired, key revoked) sends ``signed-out`` and
closes; the page then asks the person to sign in.
"""
from __future__ import annotations

import asyncio
import time
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
    principal = session.principal
    tenant = principal.tenant_scope()
    changes = [f"{source}:{'*' if tenant is None else tenant}" for source in live_view.wakes_on]
    revoked = [credentials_key(principal.key_hash)] if principal.key_hash else []
    params = request.query_params
    token = request.cookies.get(COOKIE, "")

    async def stream() -> AsyncIterator[str]:
        sent: dict[str, str] = {}
        yield "retry: 2000\n\n"
        try:
            narrowed = await live_view.narrow(View(request, hub, session), params) if live_view.narrow else None
        except AgoraError as exc:  # e.g. the agent the view is about is not there (or not the principal's to see)
            yield sse_event("gone", exc.message)
            return
        with hub.wakeups.armed([*(narrowed or changes), *revoked]) as waiter:  # for the whole stream, so no change falls between two renders
            armed_at = time.monotonic()
            while not hub.wakeups.draining:
                if await sessions.resume(token) is None:
                    yield "event: signed-out\ndata: \n\n"
                    return
                try:  # a read started after armed_at sees every change that did not wake it: it may be another tab's
                    rendered = await fragments(View(request, hub, session, woken_at=armed_at), params)
                except AgoraError as exc:  # e.g. the agent on the page was deregistered
                    yield sse_event("gone", exc.message)
                    return
                for name, html in rendered.items():
                    if sent.get(name) != html:
                        sent[name] = html
                        yield sse_event(name, html)
                woken = await waiter.wait(live_view.every or KEEPALIVE_SECONDS)
                if not woken:  # nothing happened: say so (and look again: time passes on some views)
                    yield ": still here\n\n"
                armed_at = time.monotonic()
                waiter.clear()
                if woken:  # renders of every tab woken in one slot start together, so they share their reads
                    await asyncio.sleep(COALESCE_SECONDS - armed_at % COALESCE_SECONDS)

    headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)
