"""Exports: what a list page shows, the whole of it, streamed as CSV or JSON Lines.

The export runs the page's own tool with the page's own filters, a page of 500 at a time along its cursor, and
writes each page as it comes: memory stays flat and the first rows leave at once, so a million rows export as well
as ten. (The same catalog calls as the page: the export holds exactly what the signed-in key may see.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.responses import Response, StreamingResponse

from .door import View, page
from .pages import MESSAGE_CHOICES, MESSAGE_FILTERS, tool_args

EXPORT_PAGE = 500
MESSAGE_COLUMNS = ["message_id", "seq", "tenant_id", "created_at", "kind", "from_agent", "from_agent_name", "to_agent",
                   "to_agent_name", "topic", "message_type", "performative", "priority", "content"]  # fmt: skip
FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


async def _pages(view: View, tool: str, args: dict[str, Any], items: str) -> AsyncIterator[list[dict[str, Any]]]:
    args = {**args, "limit": EXPORT_PAGE}
    while True:
        found = await view.call(tool, **args)
        yield [item.model_dump(mode="json") for item in getattr(found, items)]
        if not found.next_cursor:
            return
        args["cursor"] = found.next_cursor


def csv_line(values: list[Any]) -> str:
    """One CSV row, as a streamed download writes it."""
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell: JSON for what is not a plain value (message content, mostly)."""
    return orjson.dumps(value).decode() if isinstance(value, (dict, list)) else value


@page
async def export_messages(view: View) -> Response:
    fmt = view.request.path_params["format"]
    if fmt not in FORMATS:
        return view.render("error.html", 404, title="Not found", message="Exports are .csv or .jsonl.")
    args = tool_args(view.request.query_params, MESSAGE_FILTERS, MESSAGE_CHOICES)
    args.pop("cursor", None)  # all of it, from the newest
    first = _pages(view, "agora.messaging.search", args, "messages")
    head = await anext(first)  # a refusal (a bad filter, a foreign tenant) is an error page, not a broken download

    async def lines() -> AsyncIterator[str]:
        if fmt == "csv":
            yield csv_line(MESSAGE_COLUMNS)
        rows = head
        while True:
            for row in rows:
                yield csv_line([_cell(row.get(c)) for c in MESSAGE_COLUMNS]) if fmt == "csv" else orjson.dumps(row).decode() + "\n"
            try:
                rows = await anext(first)
            except StopAsyncIteration:
                return

    name = f"agora-messages.{fmt}"
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return StreamingResponse(lines(), media_type=FORMATS[fmt], headers=headers)

