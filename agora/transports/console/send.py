"""Send: a person steps in (seed 002's "human intervention") — a message to an agent, or a task for one.

Both go through the catalog as the signed-in principal, so identity holds as on every door: the sender of a message
is taken from the key, never from the form — an agent's session sends as that agent, an API key (the admin's or a
customer's) as ``system``, which is how the hub marks what no agent said. A task is queued in the principal's
tenant (an agent named by id or name is found where the key may see it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError, NotFound
from agora_sdk.wire.messaging import Performative

from .door import View, page
from .mcp import catalog_field_errors, read_json
from .pages import PRIORITIES

PERFORMATIVES = [p.value for p in Performative]
Parsed = tuple[dict[str, Any], dict[str, str]]


def _json_field(form: FormData, name: str, errors: dict[str, str], empty: Any) -> Any:
    """A JSON field's value (``empty`` when left empty); what is wrong with it goes to ``errors``."""
    value, problem = read_json(str(form.get(name) or "").strip() or "null")
    if problem is not None:
        errors[name] = problem
    return empty if value is None else value


def message_args(form: FormData) -> Parsed:
    """The message form as agora.messaging.send's arguments: content as plain text, or as JSON when so marked."""
    errors: dict[str, str] = {}
    to = str(form.get("to_agent") or "").strip()
    if not to:
        errors["to_agent"] = "required: an agent's id or name"
    args: dict[str, Any] = {"to_agent": to, "priority": str(form.get("priority") or "normal")}
    for name in ("message_type", "performative", "conversation_id"):
        value = str(form.get(name) or "").strip()
        if value:
            args[name] = value
    if "conversation_id" in args:
        args["correlation"] = {"conversation_id": args.pop("conversation_id")}
    if form.get("content_format") == "json":
        args["content"] = _json_field(form, "content", errors, None)
        if "content" not in errors and not str(form.get("content") or "").strip():
            errors["content"] = "required: write the JSON to send"
    else:
        text = str(form.get("content") or "")
        if not text.strip():
            errors["content"] = "required: write the message"
        args["content"] = text
    return args, errors


def task_args(form: FormData) -> Parsed:
    """The task form as agora.task.assign's arguments: one agent (id or name) or the capabilities any agent needs."""
    errors: dict[str, str] = {}
    args: dict[str, Any] = {"task_type": str(form.get("task_type") or "").strip(), "priority": str(form.get("priority") or "normal")}
    if not args["task_type"]:
        errors["task_type"] = "required"
    assignee = str(form.get("assignee") or "").strip()
    capabilities = [c.strip() for c in str(form.get("capabilities") or "").split(",") if c.strip()]
    if assignee and capabilities:
        errors["assignee"] = "give an agent or capabilities, not both"
    elif not assignee and not capabilities:
        errors["assignee"] = "give an agent (id or name), or the capabilities any agent taking it needs"
    if assignee:
        args["assignee"] = assignee
    if capabilities:
        args["required_capabilities"] = capabilities
    payload = _json_field(form, "payload", errors, {})
    if "payload" not in errors and not isinstance(payload, dict):
        errors["payload"] = 'a JSON object, please: { "key": value, … }'
    args["payload"] = payload
    return args, errors


def _sent(receipt: Any) -> tuple[str, str | None]:
    duplicate = " (a resend: the first one stands)" if receipt.status == "duplicate" else ""
    if receipt.kind == "direct":
        return f"Sent {receipt.message_id} to {receipt.to_agent}{duplicate}.", f"/ui/messages?to={receipt.to_agent}"
    return f"Sent {receipt.message_id} to every agent of the tenant{duplicate}.", "/ui/messages?kind=broadcast"


def _assigned(task: Any) -> tuple[str, str | None]:
    warnings = "".join(f" {w}" for w in task.warnings)
    return f"Task {task.task_id} is {task.status.value}.{warnings}", f"/ui/tasks/{task.task_id}"


KEPT = ("to_agent", "assignee", "capabilities", "message_type", "content_format", "task_type")  # for the next send

# Each form: its tool, how its fields become the tool's arguments, and what the tool's answer says (and links to).
FORMS: dict[str, tuple[str, Callable[[FormData], Parsed], Callable[[Any], tuple[str, str | None]]]] = {
    "message": ("agora.messaging.send", message_args, _sent),
    "task": ("agora.task.assign", task_args, _assigned),
}


def _render(view: View, status: int = 200, **context: Any) -> Response:
    """The page (or, for htmx, the form that was sent) with that form's values, errors and result; the other form
    starts afresh. ``?to=`` names the agent both forms start with."""
    to = view.request.query_params.get("to", "")
    context = {"form": None, "values": {}, "errors": {}, "result": None, **context}
    context.update(fresh={"to_agent": to, "assignee": to}, priorities=PRIORITIES, performatives=PERFORMATIVES)
    if view.partial and context["form"]:
        return view.render(f"_send_{context['form']}.html", status, **context)
    return view.render("send.html", status, title="Send", nav="send", **context)


@page
async def send_page(view: View) -> Response:
    return _render(view)


@page
async def submit(view: View) -> Response:
    """A form sent: the tool's answer with a link to what it made, or why not — beside the field it is about, with
    the catalog's own message and status — and nothing sent."""
    form_name = view.request.path_params["form"]
    if form_name not in FORMS:
        raise NotFound("no such form")
    tool, parse, describe = FORMS[form_name]
    form = await view.request.form()
    values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
    args, errors = parse(form)
    if errors:
        return _render(view, 400, form=form_name, values=values, errors=errors, result=(False, "Nothing was sent: see the fields marked.", None))
    try:
        answer = await view.call(tool, **args)
    except AgoraError as exc:
        return _render(view, exc.status, form=form_name, values=values, errors=catalog_field_errors(exc), result=(False, exc.message, None))
    message, link = describe(answer)
    return _render(view, form=form_name, result=(True, message, link), values={k: v for k, v in values.items() if k in KEPT})


ROUTES: list[BaseRoute] = [
    Route("/ui/send", send_page, methods=["GET"]),
    Route("/ui/send/{form}", submit, methods=["POST"]),
]
