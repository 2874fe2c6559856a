"""The web console: pages for people at ``/ui``, one more door over the catalog.

Every page is rendered on the server (Jinja2) from catalog calls made as the signed-in principal (``door.View``);
htmx, shipped in ``static/vendor`` with its SSE extension, swaps in fragments — a filtered table, a form's answer, a
live update from ``/ui/live/<view>``. No inline script or style, so the pages' Content-Security-Policy allows only
the hub's own files.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from agora.config import Settings
from agora.transports.rest.errors import error_response
from agora_sdk.errors import NotFound

from . import account, admin, ask, conversations, export, mcp, oauth, pages, people, reviews, schedules, send, signin, storefront, workflows
from .live import live
from .shared_reads import SharedReads


class _Assets(StaticFiles):
    """The console's own files: cacheable for a day (the pages ask for them with the hub's version in the URL)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_cached(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", b"public, max-age=86400")]
            await send(message)

        await super().__call__(scope, receive, send_cached)


async def _home(request: Request) -> Response:
    """``/``: a browser is sent to the console; anything else gets the API's 404."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/ui", 303)
    return error_response(NotFound("nothing at /: the API is under /agora (see /docs), the console under /ui"))


def mount(app: FastAPI, settings: Settings) -> None:
    if not settings.console:
        return
    app.state.console_reads = SharedReads()
    app.router.routes.extend([
        Route("/", _home, methods=["GET"]),
        Route("/ui", pages.overview, methods=["GET"]),
        Route("/ui/sign-in", signin.sign_in_form, methods=["GET"]),
        Route("/ui/sign-in", signin.sign_in, methods=["POST"]),
        Route("/ui/sign-out", signin.sign_out, methods=["POST"]),
        Route("/ui/sign-up", signin.sign_up_form, methods=["GET"]),
        Route("/ui/sign-up", signin.sign_up, methods=["POST"]),
        Route("/ui/oidc/start", signin.sso_start, methods=["GET"]),
        Route("/ui/oidc/callback", signin.sso_callback, methods=["GET"]),
        *account.ROUTES,
        *people.ROUTES,
        *([Route("/ui/oauth/authorize", oauth.consent_form, methods=["GET"]),
           Route("/ui/oauth/authorize", oauth.consent_answer, methods=["POST"])] if settings.oauth else []),
        Route("/ui/agents", pages.agents, methods=["GET"]),
        Route("/ui/agents/{agent_id}", pages.agent, methods=["GET"]),
        Route("/ui/messages", pages.messages, methods=["GET"]),
        Route("/ui/messages/export.{format}", export.export_messages, methods=["GET"]),
        Route("/ui/tasks", pages.tasks, methods=["GET"]),
        Route("/ui/tasks/requeue-dead-letter", pages.requeue_dead_letter, methods=["POST"]),
        Route("/ui/tasks/{task_id}", pages.task, methods=["GET"]),
        Route("/ui/tasks/{task_id}/{action}", pages.task_action, methods=["POST"]),
        *workflows.ROUTES,
        *schedules.ROUTES,
        *conversations.ROUTES,
        *send.ROUTES,
        *storefront.ROUTES,
        *reviews.ROUTES,
        *ask.ROUTES,
        *mcp.ROUTES,
        *admin.ROUTES,
        Route("/ui/live/{view}", live, methods=["GET"]),
        Mount("/ui/static", _Assets(packages=[("agora.transports.console", "static")]), name="console-static"),
    ])  # fmt: skip
