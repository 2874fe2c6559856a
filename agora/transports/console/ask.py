"""Ask: the marketplace chat for people (``agora.marketplace.chat`` as the signed-in principal).

A person asks in their own words; each answer comes with the tool results it rests on — listings and agents linked to
their pages — and every tool call of the turn with its status (a change the person did not ask for is refused by the
chat and shown as refused). The conversation id travels in the form, so "tell me more about the second one" and
"start an instance of it" refer to the last answer. A change (an instance started, an agent registered) happens
only as the chat's own rules allow: a customer key without the write scope is refused there, as on every door.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError

from .door import View, page

EXAMPLES = (
    "find a French to English legal translator under a cent a request",
    "how many listings are there per category?",
    "tell me more about the first one",
)


def linked(answer: Any) -> list[dict[str, str]]:
    """What the answer's tool results name, as links: search hits, a listing or an agent looked up, an instance made."""
    links: list[dict[str, str]] = []
    for found in answer.data:
        result = found.result if isinstance(found.result, dict) else {}
        if found.tool == "agora.marketplace.search":
            for hit in result.get("results", []):
                href = {"listing": f"/ui/marketplace/{hit['id']}", "agent": f"/ui/agents/{hit['id']}"}.get(hit["kind"])
                if href:
                    links.append({"href": href, "text": hit["name"], "kind": hit["kind"]})
        elif found.tool == "agora.marketplace.get_listing" and "listing_id" in result:
            links.append({"href": f"/ui/marketplace/{result['listing_id']}", "text": result["agent_name"], "kind": "listing"})
        elif found.tool in ("agora.agents.get", "agora.agents.register") and "agent_id" in result:
            links.append({"href": f"/ui/agents/{result['agent_id']}", "text": result.get("agent_name", result["agent_id"]), "kind": "agent"})
        elif found.tool == "agora.marketplace.create_instance" and "instance_id" in result:
            links.append({"href": f"/ui/instances/{result['instance_id']}", "text": result["instance_id"], "kind": "instance"})
    return list({link["href"]: link for link in links}.values())


@page
async def ask_page(view: View) -> Response:
    return view.render("ask.html", title="Ask the marketplace", nav="marketplace", examples=EXAMPLES)


@page
async def ask(view: View) -> Response:
    """One turn: the person's message and the chat's answer, appended to the conversation on the page."""
    form = await view.request.form()
    message = str(form.get("message") or "")
    conversation_id = str(form.get("conversation_id") or "").strip() or None
    args: dict[str, Any] = {"message": message, **({"conversation_id": conversation_id} if conversation_id else {})}
    try:
        answer = await view.call("agora.marketplace.chat", **args)
    except AgoraError as exc:
        return view.render("_ask_turn.html", exc.status, message=message, answer=None, error=exc.message, conversation_id=conversation_id)
    return view.render("_ask_turn.html", message=message, answer=answer, links=linked(answer), error=None, conversation_id=answer.conversation_id)


ROUTES: list[BaseRoute] = [
    Route("/ui/ask", ask_page, methods=["GET"]),
    Route("/ui/ask", ask, methods=["POST"]),
]
