"""Conversations: the tenant's conversations by last activity, and a page per conversation showing the exchange as
a thread, each task's output inline as it is emitted, with a form to continue it.

Everything comes from ``agora.conversations.*``. The thread's live region parks on its tenant's hub events and
messages and on ``conversation_key`` (what a task of the conversation emits wakes it: ``core/wakeups.keys_for``).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora.core.wakeups import conversation_key
from agora_sdk.errors import AgoraError, NotFound

from .door import View, page
from .liveviews import live_view
from .pages import list_page, may, tool_args
from .render import render_text

FILTERS = {"agent": "agent", "tenant": "tenant", "cursor": "cursor"}
TURNS = 100  # the last turns a conversation's page shows


@live_view("conversations", wakes_on=("events", "messages"))
async def conversations_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.conversations.list", **tool_args(params, FILTERS))
    return {"conversations": render_text("_conversations_rows.html", view=view, conversations=found.conversations, next_cursor=found.next_cursor, params=params)}


def _where(view: View, params: Mapping[str, str]) -> tuple[str, str | None]:
    """The conversation a page is about, and its tenant (an admin's page names it; anyone else's is their own)."""
    return params.get("conversation", ""), params.get("tenant") or (None if view.is_admin else view.principal.tenant_id)


async def _narrow(view: View, params: Mapping[str, str]) -> list[str]:
    conversation, tenant = _where(view, params)
    found = await view.call("agora.conversations.get", conversation_id=conversation, tenant=tenant, limit=1)
    return [f"events:{found.tenant_id}", f"messages:{found.tenant_id}", conversation_key(found.tenant_id, found.conversation_id)]


@live_view("conversation", wakes_on=("events", "messages"), narrow=_narrow)
async def conversation_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    conversation, tenant = _where(view, params)
    found = await view.call("agora.conversations.get", conversation_id=conversation, tenant=tenant, limit=TURNS)
    names = {p.agent_id: p.agent_name or p.agent_id for p in found.participants}
    return {"conversation": render_text("_conversation_live.html", view=view, conversation=found, names=names)}


@page
async def conversations(view: View) -> Response:
    return await list_page(view, "conversations", "Conversations")


@page
async def conversation(view: View) -> Response:
    params = {"conversation": view.request.path_params["conversation"], **view.request.query_params}
    conversation_id, tenant = _where(view, params)
    found = await view.call("agora.conversations.get", conversation_id=conversation_id, tenant=tenant, limit=1)
    fragments = await conversation_fragments(view, params)
    query = urlencode({"conversation": found.conversation_id, "tenant": found.tenant_id})
    return view.render(
        "conversation.html", title=found.summary or found.conversation_id, nav="conversations", fragments=fragments,
        conversation=found, query=query, writes=may(view, "agora.conversations.send"),
    )  # fmt: skip


@page
async def send(view: View) -> Response:
    """The continue form: the next turn sent (the thread shows it when it is stored), or the refusal in its words."""
    form = await view.request.form()
    text = str(form.get("text") or "").strip()
    if not text:
        return view.render("_result.html", 400, ok=False, message="Say something first.")
    args = {
        "conversation_id": view.request.path_params["conversation"], "text": text,
        "tenant": str(form.get("tenant") or "") or None, "send_as": str(form.get("send_as") or "") or None,
    }  # fmt: skip
    try:
        sent = await view.call("agora.conversations.send", **args)
    except AgoraError as exc:
        if isinstance(exc, NotFound):
            raise
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    what = "a task" if sent.task_id else "a message"
    turns = len(sent.history)
    return view.render("_result.html", ok=True, message=f"Sent as {what}, with {turns} earlier turn{'s' if turns != 1 else ''}.")


ROUTES: list[BaseRoute] = [
    Route("/ui/conversations", conversations, methods=["GET"]),
    Route("/ui/conversations/{conversation}", conversation, methods=["GET"]),
    Route("/ui/conversations/{conversation}/send", send, methods=["POST"]),
]
