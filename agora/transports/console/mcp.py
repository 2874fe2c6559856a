"""MCP: the upstream MCP servers (register, remove, their state), the tools browser, and a tool's page with a "try
it" form generated on the server from the tool's input JSON schema.

The form is built from the schema the catalog publishes (``agora.discovery.schema``), never from the models: an
upstream server's tool (``ext.*``) gets a form from its own schema just as a catalog tool does. What the schema
says too little about (a union of several types, an array, an object, "any JSON") is a JSON text area, and a schema
this page cannot make fields of at all is one text area for the whole input. The catalog still validates the call:
the form only spares a person from writing JSON for the simple fields.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.datastructures import FormData
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora.transports.public_url import base_url
from agora_sdk.errors import AgoraError, InvalidArgument, NotFound

from .door import View, page
from .liveviews import live_view
from .render import render_text

TOOLS_PAGE = 25
RAW = "__arguments__"  # the one text area of a schema that makes no fields (and of a tool-less form's errors)
Kind = Literal["text", "number", "integer", "boolean", "tristate", "choice", "json"]


# -- the form a JSON schema makes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FormField:
    """One input of a try-it form: what it is called, how it is entered and how its text becomes a value."""

    name: str
    kind: Kind
    required: bool
    hint: str
    choices: tuple[Any, ...] = ()
    default: Any = None
    json_shape: str = ""  # a placeholder for a JSON text area: [ ], { } or any JSON

    @property
    def options(self) -> list[tuple[str, str]]:
        """A choice's options as (value sent, label shown)."""
        return [(_option(c), c if isinstance(c, str) else json.dumps(c)) for c in self.choices]

    def initial(self) -> str:
        """What the input shows before anything is typed: the default of a choice or a checkbox, else nothing
        (an empty field is left out of the call, so the tool's own default applies)."""
        if self.kind in ("choice", "boolean") and self.default is not None:
            return _option(self.default)
        return ""


def _option(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _resolve(node: Any, root: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """A schema node with its local ``$ref`` (``#/$defs/X``) followed, its ``allOf`` of one inlined; what the
    node says itself (a description, a default) wins over what it refers to."""
    if not isinstance(node, dict) or depth > 16:
        return {}
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_resolve(target, root, depth + 1), **rest}
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return {**_resolve(all_of[0], root, depth + 1), **rest}
    return node


def _branches(node: dict[str, Any], root: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The one shape a field is entered as, and whether null is also allowed: ``X | None`` is X; of several
    shapes the first is offered (a value of it is valid), or a JSON text area when that first one is not simple."""
    for union in ("anyOf", "oneOf"):
        options = node.get(union)
        if isinstance(options, list):
            resolved = [_resolve(o, root) for o in options]
            kept = [o for o in resolved if o.get("type") != "null"]
            nullable = len(kept) < len(resolved)
            outer = {k: v for k, v in node.items() if k not in (union, "title")}
            if len(kept) == 1 or (kept and _scalar(kept[0])):
                return {**kept[0], **outer}, nullable
            return {**outer, "type": None}, nullable
    types = node.get("type")
    if isinstance(types, list):
        kept_types = [t for t in types if t != "null"]
        return {**node, "type": kept_types[0] if len(kept_types) == 1 else None}, len(kept_types) < len(types)
    return node, False


def _scalar(node: dict[str, Any]) -> bool:
    return "enum" in node or "const" in node or node.get("type") in ("string", "number", "integer", "boolean")


_BOUNDS = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))


def _hint(node: dict[str, Any], default: Any) -> str:
    parts = [str(node["description"])] if node.get("description") else []
    if default is not None and default != [] and default != {}:
        parts.append(f"default {json.dumps(default)}")
    bounds = [f"{sign} {node[key]}" for key, sign in _BOUNDS if key in node]
    if bounds:
        parts.append(", ".join(bounds))
    if node.get("format"):
        parts.append(str(node["format"]))
    return " · ".join(parts)


def _field(name: str, raw: Any, root: Mapping[str, Any], required: bool) -> FormField:
    node, nullable = _branches(_resolve(raw, root), root)
    default = node.get("default")
    hint = _hint(node, default)
    if "enum" in node or "const" in node:
        choices = tuple(node["enum"]) if "enum" in node else (node["const"],)
        return FormField(name, "choice", required, hint, choices, default if default in choices else None)
    kind = node.get("type")
    if kind == "boolean":  # a checkbox says false when unticked: only where false is what unticked means
        plain = required or isinstance(default, bool)
        return FormField(name, "boolean" if plain else "tristate", required, hint, default=default if plain else None)
    if kind in ("string", "number", "integer"):
        return FormField(name, kind if kind != "string" else "text", required, hint)
    shape = "[ ]" if kind == "array" else "{ }" if kind == "object" else "any JSON: \"text\", 42, [ ], { }"
    return FormField(name, "json", required, hint, json_shape=shape)


def form_fields(schema: Mapping[str, Any]) -> list[FormField] | None:
    """The fields of a tool's input, or None when its schema is not an object of named properties (the form is then
    one JSON text area for the whole input)."""
    root = _resolve(dict(schema), schema)
    properties = root.get("properties")
    if isinstance(properties, dict):
        required = set(root.get("required") or [])
        return [_field(str(name), raw, schema, name in required) for name, raw in properties.items()]
    if root.get("type") == "object" and root.get("additionalProperties") is False:
        return []  # a tool without arguments
    return None


def read_json(text: str) -> tuple[Any, str | None]:
    """JSON a person typed, or what is wrong with it and where."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"


def coerce(fields: list[FormField] | None, form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A submitted try-it form as the tool's arguments, by each field's type; and the fields that could not be read
    (a bad number, bad JSON, a missing required value), with why. An empty optional field is left out."""
    if fields is None:
        text = str(form.get(RAW) or "").strip() or "{}"
        value, problem = read_json(text)
        if problem is None and not isinstance(value, dict):
            problem = "the input is a JSON object: { \"name\": value, … }"
        return (value if problem is None else {}), ({RAW: problem} if problem else {})
    args: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        raw = form.get(f.name)
        text = raw if isinstance(raw, str) else ""
        if f.kind == "boolean":
            args[f.name] = text == "true"
            continue
        if f.kind != "text":
            text = text.strip()
        if text == "":
            if f.required:
                errors[f.name] = "required"
            continue
        value, problem = _value(f, text)
        if problem is None:
            args[f.name] = value
        else:
            errors[f.name] = problem
    return args, errors


def _value(f: FormField, text: str) -> tuple[Any, str | None]:
    if f.kind == "text":
        return text, None
    if f.kind == "integer":
        try:
            return int(text), None
        except ValueError:
            return None, "a whole number, please"
    if f.kind == "number":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        return (number, None) if math.isfinite(number) else (None, "a number, please")
    if f.kind == "tristate":
        return (text == "true", None) if text in ("true", "false") else (None, "true or false")
    if f.kind == "choice":
        found = {_option(c): c for c in f.choices}
        return (found[text], None) if text in found else (None, "one of the listed options, please")
    return read_json(text)


def catalog_field_errors(exc: AgoraError) -> dict[str, str]:
    """A catalog refusal's complaints about named fields (its ``details``), by top-level field, to show beside them."""
    found: dict[str, str] = {}
    for err in exc.details.get("errors") or []:
        if isinstance(err, dict) and err.get("field"):
            found.setdefault(str(err["field"]).split(".")[0], str(err.get("message", "")))
    single = exc.details.get("field")
    if isinstance(single, str):
        found.setdefault(single, exc.message)
    return found


# -- the servers and the tools list -------------------------------------------------------------------------------


@live_view("mcp-servers")
async def servers_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    """The servers this principal sees; or why it sees none (no gateway on this hub, a key without the scope), said
    in their place so that the rest of the page still works."""
    try:
        servers, unavailable = (await view.call("agora.mcp_servers.list")).servers, None
    except AgoraError as exc:
        servers, unavailable = [], exc.message
    return {"mcp-servers": render_text("_mcp_servers_rows.html", view=view, servers=servers, unavailable=unavailable)}


async def _tools_context(view: View, params: Mapping[str, str]) -> dict[str, Any]:
    """One page of the tools this principal sees (the catalog's and its upstream servers'), by words and category.
    The list is the live catalog, held in memory, so a page is a slice of it (``cursor`` is where it starts)."""
    args = {k: v for k, v in (("text", params.get("q", "").strip()), ("category", params.get("category", "").strip())) if v}
    start_text = params.get("cursor", "0")
    if not start_text.isdigit():
        raise InvalidArgument("cursor: a page's cursor is a number from its 'Next page' link", details={"field": "cursor"})
    start = int(start_text)
    found = await view.call("agora.discovery.list", **args)
    tools = sorted(found.services, key=lambda t: t.name)
    more = start + TOOLS_PAGE < len(tools)
    return {"tools": tools[start : start + TOOLS_PAGE], "total": len(tools), "start": start, "next_cursor": start + TOOLS_PAGE if more else None, "params": params}


async def _page(view: View, status: int = 200, **servers: Any) -> Response:
    """The whole page; ``servers`` is what the servers section shows after a change (the form's values, what was
    wrong with them, the result)."""
    params = view.request.query_params
    tools = await _tools_context(view, params)
    servers_html = (await servers_fragments(view, {}))["mcp-servers"]
    categories = sorted({t.category for t in (await view.call("agora.discovery.list")).services})
    context = {"values": {}, "errors": {}, "result": None, **servers}
    connect = {"mcp_url": base_url(view.request, view.hub.settings.public_url) + "/mcp", "oauth": view.hub.oauth is not None}
    return view.render("mcp.html", status, title="MCP", nav="mcp", servers_html=servers_html, categories=categories, **connect, **context, **tools)


async def _servers_section(view: View, status: int = 200, **context: Any) -> Response:
    """After a change of servers: the servers section again (htmx swaps it in place), or the whole page."""
    if not view.partial:
        return await _page(view, status, **context)
    fragments = await servers_fragments(view, {})
    return view.render("_mcp_servers.html", status, servers_html=fragments["mcp-servers"], **{"values": {}, "errors": {}, "result": None, **context})


@page
async def mcp_home(view: View) -> Response:
    """The page; or (its tools filter changed: an htmx request) the tools list again."""
    if view.partial:
        return view.render("_mcp_tools_rows.html", **await _tools_context(view, view.request.query_params))
    return await _page(view)


def _register_args(view: View, form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The register form as agora.mcp_servers.register's arguments (a command and its arguments only from the admin,
    one argument a line)."""
    text = {k: str(form.get(k) or "").strip() for k in ("name", "url", "bearer_token", "command", "args", "tenant", "timeout_seconds")}
    args: dict[str, Any] = {"name": text["name"]}
    errors: dict[str, str] = {}
    for key in ("url", "bearer_token", "command", "tenant"):
        if text[key]:
            args[key] = text[key]
    if text["args"]:
        args["args"] = [line.strip() for line in text["args"].splitlines() if line.strip()]
    if text["timeout_seconds"]:
        try:
            args["timeout_seconds"] = float(text["timeout_seconds"])
        except ValueError:
            errors["timeout_seconds"] = "a number of seconds, please"
    if not text["name"]:
        errors["name"] = "required"
    if not text["url"] and not text["command"]:
        errors["url"] = "give the server's URL" + (" (or a command to start)" if view.is_admin else "")
    return args, errors


@page
async def register_server(view: View) -> Response:
    form = await view.request.form()
    values = {k: str(v) for k, v in form.items() if k not in ("bearer_token", "csrf_token")}  # a secret is never sent back
    args, errors = _register_args(view, form)
    if errors:
        return await _servers_section(view, 400, values=values, errors=errors, result=(False, "Nothing was registered: see the fields marked."))
    try:
        server = await view.call("agora.mcp_servers.register", **args)
    except AgoraError as exc:
        return await _servers_section(view, exc.status, values=values, errors=catalog_field_errors(exc), result=(False, exc.message))
    tools = len(server.tools)
    return await _servers_section(view, result=(True, f"{server.name} is {server.state.value}: {tools} tool{'' if tools == 1 else 's'} imported."))


@page
async def remove_server(view: View) -> Response:
    name = view.request.path_params["name"]
    try:
        removed = await view.call("agora.mcp_servers.remove", name=name)
    except AgoraError as exc:
        return await _servers_section(view, exc.status, result=(False, exc.message))
    message = f"{name} removed: its tools left the catalog." if removed.removed else f"{name} was already gone."
    return await _servers_section(view, result=(True, message))


# -- a tool's page ------------------------------------------------------------------------------------------------


@dataclass
class TryIt:
    """A tool's try-it form as shown: its fields, what was typed, what was wrong, and the last call's outcome."""

    name: str
    read_only: bool
    fields: list[FormField] | None
    values: Mapping[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    result: Any = None
    failure: tuple[int, str] | None = None

    def shown(self, f: FormField) -> str:
        """What a field shows: what was sent (an unticked box is absent from it), else its initial value."""
        return str(self.values.get(f.name, "")) if self.values else f.initial()


async def _tool(view: View, name: str) -> tuple[Any, Any]:
    """The tool's schema and its listing (read-only or not, scopes); NotFound for a tool this principal cannot see."""
    schema = await view.call("agora.discovery.schema", name=name)
    listed = await view.call("agora.discovery.list", text=name)
    info = next((t for t in listed.services if t.name == name), None)
    if info is None:
        raise NotFound(f"unknown tool '{name}'")
    return schema, info


async def _run(view: View, name: str, args: dict[str, Any]) -> Any:
    """Call the tool as the signed-in principal: through agora.tools.call (any tool, the catalog's or an upstream's,
    with its own rights and checks), except the two agora.tools.* that it does not call."""
    if name.startswith("agora.tools."):
        return (await view.call(name, **args)).model_dump(mode="json")
    return (await view.call("agora.tools.call", name=name, arguments=args)).result


@page
async def tool_page(view: View) -> Response:
    name = view.request.path_params["name"]
    schema, info = await _tool(view, name)
    form = TryIt(name, info.read_only, form_fields(schema.input_schema))
    return view.render("mcp_tool.html", title=name, nav="mcp", schema=schema, info=info, form=form)


@page
async def try_tool(view: View) -> Response:
    """The try-it form sent: the result JSON, or why not (beside the field, or the catalog's own refusal) in place."""
    name = view.request.path_params["name"]
    schema, info = await _tool(view, name)
    submitted = await view.request.form()
    fields = form_fields(schema.input_schema)
    args, errors = coerce(fields, submitted)
    form = TryIt(name, info.read_only, fields, values={k: str(v) for k, v in submitted.items()}, errors=errors)
    status = 200
    if errors:
        status, form.failure = 400, (400, "Not called: see the fields marked.")
    else:
        try:
            form.result = await _run(view, name, args)
        except AgoraError as exc:
            status, form.failure = exc.status, (exc.status, exc.message)
            named = catalog_field_errors(exc)
            if fields is None:  # one text area: the refusal is about it
                form.errors = {RAW: exc.message} if named else {}
            else:
                form.errors = {f.name: named[f.name] for f in fields if f.name in named}
    if view.partial:
        return view.render("_mcp_try.html", status, form=form)
    return view.render("mcp_tool.html", status, title=name, nav="mcp", schema=schema, info=info, form=form)


ROUTES: list[BaseRoute] = [
    Route("/ui/mcp", mcp_home, methods=["GET"]),
    Route("/ui/mcp/servers", register_server, methods=["POST"]),
    Route("/ui/mcp/servers/{name}/remove", remove_server, methods=["POST"]),
    Route("/ui/mcp/tools/{name}", tool_page, methods=["GET"]),
    Route("/ui/mcp/tools/{name}/try", try_tool, methods=["POST"]),
]
