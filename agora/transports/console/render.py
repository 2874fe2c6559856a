"""Jinja2 for the console's pages: autoescaped, loaded from the package, with the few filters the templates need."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from agora import __version__

# Scripts and styles only from the hub itself, no inline ones: an injected <script> has nowhere to come from.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {"content-security-policy": CSP, "cache-control": "no-store", "vary": "HX-Request, Cookie"}


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``12 s ago``, ``5 min ago``, ``3 h ago``, ``2 d ago``; ``never`` for None."""
    if value is None:
        return "never"
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 0:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


@lru_cache(maxsize=8192)  # every open tab renders the same rows again and again
def when(value: datetime | None) -> str:
    """An ISO timestamp to the second, as a ``<time>`` element's datetime wants it (UTC)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


def query_with(params: Mapping[str, str], **changes: str | None) -> str:
    """A list page's query string with some parameters changed (None: dropped); a new order or filter starts again
    at the first page, so the cursor goes unless it is one of the changes."""
    merged = {k: v for k, v in params.items() if v and k != "cursor"}
    merged.update(changes)
    return urlencode({k: v for k, v in merged.items() if v})


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


environment = Environment(
    loader=PackageLoader("agora.transports.console", "templates"),
    autoescape=select_autoescape(["html"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.filters.update(ago=ago, when=when, pretty_json=pretty_json)
environment.globals.update(version=__version__, query_with=query_with)


def render_text(template: str, **context: Any) -> str:
    return environment.get_template(template).render(**context)


def render(template: str, status_code: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    return HTMLResponse(render_text(template, **context), status_code, headers={**PAGE_HEADERS, **(headers or {})})
