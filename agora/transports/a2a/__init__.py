"""The A2A door (``door.py``), mounted lazily: its paths are claimed at start, the SDK is loaded on the first request.

The ``a2a-sdk`` server stack (its routes, request handlers and their SQLAlchemy ORM task store) costs a few hundred
milliseconds and ~15 MiB to import; a hub that never sees an A2A caller should not pay that at every start.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from starlette.routing import BaseRoute, Match, NoMatchFound, Router
from starlette.types import Receive, Scope, Send

from agora.config import Settings

HUB_CARDS = ("/.well-known/agent-card.json", "/.well-known/agent.json")  # 1.0 (0.3 on request), and 0.3


def claimed(path: str) -> bool:
    """The paths the door answers: the hub's card, the directory at ``/a2a`` and everything under it."""
    return path in HUB_CARDS or path == "/a2a" or path.startswith("/a2a/")


class LazyRoutes(BaseRoute):
    """Claims every HTTP request ``claims`` accepts and answers it with the routes ``build`` makes, built once on
    first use; an unmatched path or method inside is a 404 or 405 as anywhere else in the app."""

    def __init__(self, build: Callable[[], list[BaseRoute]], claims: Callable[[str], bool]):
        self._build = build
        self._claims = claims
        self._router: Router | None = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and self._claims(scope["path"]):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: object) -> object:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._router is None:
            self._router = Router(self._build(), redirect_slashes=False)
        await self._router(scope, receive, send)


def mount(app: FastAPI, settings: Settings) -> None:
    def build() -> list[BaseRoute]:
        from .door import A2ADoor

        return A2ADoor(settings).routes()

    app.router.routes.append(LazyRoutes(build, claimed))


__all__ = ["mount"]
