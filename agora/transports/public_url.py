"""How clients reach this hub, for what it writes into answers (A2A cards, OAuth metadata, 401 challenges)."""

from __future__ import annotations

from starlette.requests import Request


def base_url(request: Request, public_url: str | None) -> str:
    """``--public-url`` when set, else the URL the request came to (behind a trusted proxy, its scheme)."""
    return (public_url or str(request.base_url)).rstrip("/")
