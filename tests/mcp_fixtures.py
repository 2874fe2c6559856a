"""The official MCP conformance suite's fixtures, served by a test hub as ``--mcp-extension tests.mcp_fixtures:ConformanceFixtures``.

The suite (``@modelcontextprotocol/conformance``) calls tools, resources and prompts by exact names
(``test_simple_text``, ``test://static-text``, ``test_prompt_with_arguments``, …) and checks exact contents. These
fixtures give it those names beside the real catalog, on the hub's own ``/mcp`` door, so what it scores is the
door, the session manager and the handlers a normal hub runs. Its clients are anonymous: they act as a tenant of
their own with the task scopes only, so they reach the fixtures and their own tasks, and are refused the rest.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import PromptsListChanged, ToolsListChanged

from agora.core.auth import Principal, PrincipalKind

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}
NAME_FORM: dict[str, Any] = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}

Context = ServerRequestContext[Any]
Handler = Callable[[Context, dict[str, Any], types.CallToolRequestParams], Awaitable[Any]]


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def embedded(uri: str, body: str, mime: str = "text/plain") -> types.EmbeddedResource:
    return types.EmbeddedResource(type="resource", resource=types.TextResourceContents(uri=uri, mime_type=mime, text=body))


class MemoryEventStore(EventStore):
    """Events kept in memory so an SSE stream closed mid-call can be resumed (the suite's polling scenarios)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, types.JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: types.JSONRPCMessage | None) -> str:
        event_id = str(len(self.events) + 1)
        self.events.append((stream_id, event_id, message))
        return event_id

    async def replay_events_after(self, last_event_id: str, send_callback: EventCallback) -> str | None:
        stream = next((s for s, e, _ in self.events if e == last_event_id), None)
        if stream is None:
            return None
        for s, event_id, message in self.events[int(last_event_id):]:
            if s == stream and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream


class ConformanceFixtures:
    """The suite's fixture tools, resources and prompts, and the extra protocol handlers it exercises."""

    # Tasks it starts are Agora tasks: it may read and cancel its own (and nothing else of the catalog's).
    anonymous = Principal(PrincipalKind.customer, key_id="anonymous", tenant_id="mcp-conformance", scopes=frozenset({"tasks:read", "tasks:write"}))
    retry_interval_ms = 100  # how soon a client told to reconnect an SSE stream comes back

    def __init__(self) -> None:
        self.event_store = MemoryEventStore()
        self.subscribed: set[str] = set()
        self._tools: dict[str, tuple[types.Tool, Handler]] = {}
        self._declare_tools()

    # -- tools ----------------------------------------------------------------------------------------------

    def _tool(self, name: str, description: str, handler: Handler, schema: dict[str, Any] | None = None, tasks: str | None = None) -> None:
        execution = types.ToolExecution(task_support=tasks) if tasks else None
        self._tools[name] = (types.Tool(name=name, description=description, input_schema=schema or NO_ARGUMENTS, execution=execution), handler)

    def _declare_tools(self) -> None:
        plain = {
            "test_simple_text": [text("This is a simple text response for testing.")],
            "test_image_content": [types.ImageContent(type="image", data=PNG, mime_type="image/png")],
            "test_audio_content": [types.AudioContent(type="audio", data=WAV, mime_type="audio/wav")],
            "test_embedded_resource": [embedded("test://embedded-resource", "This is an embedded resource content.")],
            "test_multiple_content_types": [
                text("Multiple content types test:"),
                types.ImageContent(type="image", data=PNG, mime_type="image/png"),
                embedded("test://mixed-content-resource", '{"test": "data", "value": 123}', "application/json"),
            ],
        }
        for name, content in plain.items():
            self._tool(name, f"Conformance fixture: {name.removeprefix('test_').replace('_', ' ')}", _returning(content))
        self._tool("test_error_handling", "Conformance fixture: a tool that fails", _failing)
        self._tool("test_tool_with_logging", "Conformance fixture: logs while it runs", _logging)
        self._tool("test_tool_with_progress", "Conformance fixture: reports progress", _progress)
        prompt_schema = {"type": "object", "properties": {"prompt": {"type": "string"}}, "required": ["prompt"]}
        self._tool("test_sampling", "Conformance fixture: asks the client's model", _sampling, prompt_schema)
        message_schema = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
        self._tool("test_elicitation", "Conformance fixture: asks the user", _elicitation, message_schema)
        self._tool("test_elicitation_sep1034_defaults", "Conformance fixture: elicitation with defaults", _elicit_defaults)
        self._tool("test_elicitation_sep1330_enums", "Conformance fixture: elicitation with enums", _elicit_enums)
        region = {"type": "string", "description": "Mirrored into the Mcp-Param-Region header", "x-mcp-header": "Region", "default": "<none>"}
        self._tool("test_x_mcp_header", "Conformance fixture: Mcp-Param-* headers", _region, {"type": "object", "properties": {"region": region}})
        self._tool("test_missing_capability", "Conformance fixture: needs the sampling capability", _needs_sampling)
        self._tool("json_schema_2020_12_tool", "Conformance fixture: JSON Schema 2020-12 keywords", _returning([text("json_schema_2020_12_tool")]), SCHEMA_2020_12)
        self._tool("test_reconnection", "Conformance fixture: closes its SSE stream mid-call", _reconnection)
        self._tool("test_logging_tool", "Conformance fixture: logs only when the request asked for logs", _logging)
        self._tool("test_streaming_elicitation", "Conformance fixture: needs the user's answer (as an input request)", _ir_elicitation)
        self._tool("test_trigger_tool_change", "Conformance fixture: announces a tools list change", _announce(ToolsListChanged()))
        self._tool("test_trigger_prompt_change", "Conformance fixture: announces a prompts list change", _announce(PromptsListChanged()))
        for name, handler in INPUT_REQUIRED_TOOLS.items():
            self._tool(name, f"Conformance fixture: {name.replace('_', ' ')}", handler)
        # The tasks extension's fixtures (SEP-2663).
        self._tool("greet", "Conformance fixture: says hello (never a task)", _greet, NAME_FORM)
        seconds = {"type": "object", "properties": {"seconds": {"type": "number"}, "label": {"type": "string"}}}
        self._tool("slow_compute", "Conformance fixture: works for `seconds` seconds", _slow_compute, seconds, tasks="optional")
        self._tool("failing_job", "Conformance fixture: fails as a tool after a second", _failing_job, tasks="required")
        self._tool("protocol_error_job", "Conformance fixture: breaks with a protocol error", _protocol_error_job, tasks="optional")
        filename = {"type": "object", "properties": {"filename": {"type": "string"}}}
        self._tool("confirm_delete", "Conformance fixture: asks for a confirmation, then deletes", _confirm_delete, filename, tasks="optional")
        self._tool("multi_input", "Conformance fixture: asks two questions at once", _multi_input, tasks="optional")
        self._tool("test_tool_with_task", "Conformance fixture: asks a name, then works on as a task", _with_task, tasks="required")

    @property
    def tools(self) -> list[types.Tool]:
        return [tool for tool, _ in self._tools.values()]

    def has_tool(self, name: str) -> bool:
        return name in self._tools

    def task_support(self, params: types.CallToolRequestParams) -> str | None:
        if params.name == "test_tool_with_task" and not params.input_responses:
            return None  # its first round gathers input synchronously; the round with the answer becomes a task
        execution = self._tools[params.name][0].execution
        return execution.task_support if execution else None

    def input_schema(self, name: str) -> dict[str, Any] | None:
        entry = self._tools.get(name)
        return entry[0].input_schema if entry else None

    async def call_tool(self, ctx: Context, params: types.CallToolRequestParams, bus: SubscriptionBus) -> types.CallToolResult | types.InputRequiredResult:
        _, handler = self._tools[params.name]
        outcome = await handler(ctx, {"bus": bus, **(params.arguments or {})}, params)
        if isinstance(outcome, (types.CallToolResult, types.InputRequiredResult)):
            return outcome
        return types.CallToolResult(content=[text(outcome)] if isinstance(outcome, str) else outcome)

    # -- resources ------------------------------------------------------------------------------------------

    resources = [
        types.Resource(uri="test://static-text", name="static-text", description="A static text resource", mime_type="text/plain"),
        types.Resource(uri="test://static-binary", name="static-binary", description="A static binary resource", mime_type="image/png"),
        types.Resource(uri="test://watched-resource", name="watched-resource", description="A resource to subscribe to", mime_type="text/plain"),
    ]
    templates = [
        types.ResourceTemplate(uri_template="test://template/{id}/data", name="template", description="Data by id", mime_type="application/json"),
    ]

    def owns(self, uri: str) -> bool:
        return uri.startswith("test://")

    def read_resource(self, uri: str) -> types.ReadResourceResult:
        if uri == "test://static-text":
            contents: types.TextResourceContents | types.BlobResourceContents = types.TextResourceContents(
                uri=uri, mime_type="text/plain", text="This is the content of the static text resource."
            )
        elif uri == "test://static-binary":
            contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=base64.b64encode(base64.b64decode(PNG)).decode())
        elif uri == "test://watched-resource":
            contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text="Watched resource content")
        elif uri.startswith("test://template/") and uri.endswith("/data"):
            item = uri.removeprefix("test://template/").removesuffix("/data")
            body = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
            contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=body)
        else:
            raise MCPError(types.INVALID_PARAMS, f"no resource {uri}", data={"uri": uri})  # SEP-2164
        return types.ReadResourceResult(contents=[contents])

    # -- prompts --------------------------------------------------------------------------------------------

    prompts = [
        types.Prompt(name="test_simple_prompt", description="A simple prompt without arguments"),
        types.Prompt(
            name="test_prompt_with_arguments",
            description="A prompt with required arguments",
            arguments=[types.PromptArgument(name="arg1", required=True), types.PromptArgument(name="arg2", required=True)],
        ),
        types.Prompt(
            name="test_prompt_with_embedded_resource",
            description="A prompt that embeds a resource",
            arguments=[types.PromptArgument(name="resourceUri", required=True)],
        ),
        types.Prompt(name="test_prompt_with_image", description="A prompt with an image"),
        types.Prompt(name="test_input_required_result_prompt", description="A prompt that first asks the user for context"),
    ]

    def has_prompt(self, name: str) -> bool:
        return any(p.name == name for p in self.prompts)

    def get_prompt(self, params: types.GetPromptRequestParams) -> types.GetPromptResult | types.InputRequiredResult:
        name, args = params.name, params.arguments or {}
        user: Callable[[Any], types.PromptMessage] = lambda content: types.PromptMessage(role="user", content=content)  # noqa: E731
        if name == "test_input_required_result_prompt":
            answer = (params.input_responses or {}).get("user_context")
            if answer is None:
                form = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
                ask = types.ElicitRequest(params=types.ElicitRequestFormParams(message="What context should the prompt use?", requested_schema=form))
                return types.InputRequiredResult(input_requests={"user_context": ask})
            messages = [user(text(f"Use the following context: {_form_field(answer, 'context', '?')}"))]
        elif name == "test_simple_prompt":
            messages = [user(text("This is a simple prompt for testing."))]
        elif name == "test_prompt_with_arguments":
            messages = [user(text(f"Prompt with arguments: arg1='{args.get('arg1')}', arg2='{args.get('arg2')}'"))]
        elif name == "test_prompt_with_embedded_resource":
            uri = args.get("resourceUri", "test://example-resource")
            messages = [user(embedded(uri, "Embedded resource content for testing.")), user(text("Please process the embedded resource above."))]
        else:
            messages = [user(types.ImageContent(type="image", data=PNG, mime_type="image/png")), user(text("Please analyze the image above."))]
        return types.GetPromptResult(messages=messages)

    # -- the other requests the suite sends -----------------------------------------------------------------

    def handlers(self) -> dict[str, Any]:
        """Extra ``Server`` handlers: logging level, resource subscriptions and completion."""

        async def set_level(_ctx: Context, _params: types.SetLevelRequestParams) -> types.EmptyResult:
            return types.EmptyResult()

        async def subscribe(_ctx: Context, params: types.SubscribeRequestParams) -> types.EmptyResult:
            self.subscribed.add(str(params.uri))
            return types.EmptyResult()

        async def unsubscribe(_ctx: Context, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
            self.subscribed.discard(str(params.uri))
            return types.EmptyResult()

        async def complete(_ctx: Context, _params: types.CompleteRequestParams) -> types.CompleteResult:
            return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))

        return {
            "on_set_logging_level": set_level,
            "on_subscribe_resource": subscribe,
            "on_unsubscribe_resource": unsubscribe,
            "on_completion": complete,
        }


# -- tool handlers ----------------------------------------------------------------------------------------


def _returning(content: list[Any]) -> Handler:
    async def handler(_ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> list[Any]:
        return content

    return handler


async def _failing(_ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[text("This tool intentionally returns an error for testing")], is_error=True)


async def _logging(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    for line in ("Tool execution started", "Tool processing data", "Tool execution completed"):
        await ctx.session.send_log_message("info", line, related_request_id=ctx.request_id)
        await asyncio.sleep(0.05)
    return "Tool with logging executed successfully"


async def _progress(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    for step in (0, 50, 100):
        await ctx.session.report_progress(step, 100, f"Completed step {step} of 100")
        await asyncio.sleep(0.05)
    token = ctx.meta.get("progress_token") if ctx.meta else None
    return str(token if token is not None else 0)


async def _sampling(ctx: Context, args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    message = types.SamplingMessage(role="user", content=text(args["prompt"]))
    result = await ctx.session.create_message(messages=[message], max_tokens=100, related_request_id=ctx.request_id)
    answer = result.content.text if isinstance(result.content, types.TextContent) else "No response"
    return f"LLM response: {answer}"


async def _elicit(ctx: Context, message: str, schema: dict[str, Any], prefix: str) -> str:
    result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    content = json.dumps(result.content, separators=(",", ":")) if result.action == "accept" and result.content else "{}"
    return f"{prefix}: action={result.action}, content={content}"


async def _elicitation(ctx: Context, args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    response = {"type": "object", "properties": {"response": {"type": "string", "description": "User's response"}}, "required": ["response"]}
    return await _elicit(ctx, args["message"], response, "User response")


DEFAULTS_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "User name", "default": "John Doe"},
        "age": {"type": "integer", "description": "User age", "default": 30},
        "score": {"type": "number", "description": "User score", "default": 95.5},
        "status": {"type": "string", "description": "User status", "enum": ["active", "inactive", "pending"], "default": "active"},
        "verified": {"type": "boolean", "description": "Verification status", "default": True},
    },
}

ENUMS_FORM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "untitledSingle": {"type": "string", "description": "Simple enum without titles", "enum": ["active", "inactive", "pending"]},
        "titledSingle": {
            "type": "string",
            "description": "Enum with titled options (oneOf)",
            "oneOf": [{"const": "low", "title": "Low Priority"}, {"const": "medium", "title": "Medium Priority"}, {"const": "high", "title": "High Priority"}],
        },
        "untitledMulti": {"type": "array", "description": "Multi-select without titles", "items": {"type": "string", "enum": ["read", "write", "execute"]}},
        "titledMulti": {
            "type": "array",
            "description": "Multi-select with titled options",
            "items": {"anyOf": [{"const": "feature", "title": "New Feature"}, {"const": "bug", "title": "Bug Fix"}, {"const": "docs", "title": "Documentation"}]},
        },
        "legacyEnum": {"type": "string", "description": "Legacy enum with enumNames", "enum": ["small", "medium", "large"], "enumNames": ["Small Size", "Medium Size", "Large Size"]},
    },
    "required": ["untitledSingle", "titledSingle", "untitledMulti", "titledMulti", "legacyEnum"],
}


async def _elicit_defaults(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    return await _elicit(ctx, "Please provide user information", DEFAULTS_FORM, "Elicitation result")


async def _elicit_enums(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    return await _elicit(ctx, "Please select values using different enum schema types", ENUMS_FORM, "Elicitation completed")


async def _region(_ctx: Context, args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    return f"region={args.get('region', '<none>')}"


async def _needs_sampling(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    capabilities = ctx.session.client_capabilities
    if capabilities is None or capabilities.sampling is None:
        raise MCPError(
            types.MISSING_REQUIRED_CLIENT_CAPABILITY,
            "This tool requires the client 'sampling' capability",
            data={"requiredCapabilities": {"sampling": {}}},
        )
    return "Client declared sampling capability; proceeding."


async def _reconnection(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    await ctx.session.send_log_message("info", "Before disconnect", related_request_id=ctx.request_id)
    if ctx.close_sse_stream is not None:
        await ctx.close_sse_stream()
    await asyncio.sleep(0.2)
    await ctx.session.send_log_message("info", "After reconnect", related_request_id=ctx.request_id)
    return "Reconnection test completed"


async def _greet(_ctx: Context, args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    return f"Hello, {args.get('name', 'World')}!"


async def _slow_compute(_ctx: Context, args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    await asyncio.sleep(float(args.get("seconds", 1)))
    return f"computed {args.get('label', '')}".strip()


async def _failing_job(_ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> types.CallToolResult:
    await asyncio.sleep(1)
    return types.CallToolResult(content=[text("the job failed")], is_error=True)


async def _protocol_error_job(_ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
    raise MCPError(types.INTERNAL_ERROR, "the job broke")


CONFIRM_FORM: dict[str, Any] = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}


def _ask(message: str, schema: dict[str, Any]) -> types.ElicitRequest:
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=schema))


async def _confirm_delete(_ctx: Context, args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    answer = _answer(params, "confirm")
    if answer is None:
        return types.InputRequiredResult(input_requests={"confirm": _ask(f"Delete {args.get('filename', 'the file')}?", CONFIRM_FORM)})
    confirmed = isinstance(answer, types.ElicitResult) and answer.action == "accept" and (answer.content or {}).get("confirm")
    return f"deleted {args.get('filename', 'the file')}" if confirmed else "kept"


async def _multi_input(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    if {"name", "confirm"} <= (params.input_responses or {}).keys():
        return f"{_form_field(_answer(params, 'name'), 'name', '?')} confirmed"
    return types.InputRequiredResult(input_requests={"name": _ask_name(), "confirm": _ask("Proceed?", CONFIRM_FORM)})


async def _with_task(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    answer = _answer(params, "user_name")
    if answer is None:
        return types.InputRequiredResult(input_requests={"user_name": _ask_name()})
    await asyncio.sleep(0.2)
    return f"Hello, {_form_field(answer, 'name', 'stranger')}, from a task"


def _announce(event: Any) -> Handler:
    async def handler(_ctx: Context, args: dict[str, Any], _params: types.CallToolRequestParams) -> str:
        await args["bus"].publish(event)
        return "tool list changed" if isinstance(event, ToolsListChanged) else "prompt list changed"

    return handler


SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {"address": {"$anchor": "addressDef", "type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


# -- multi-round-trip requests (2026-07-28: InputRequiredResult) ------------------------------------------


def _ask_name(message: str = "What is your name?") -> types.ElicitRequest:
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message=message, requested_schema=NAME_FORM))


def _ask_model(prompt: str, max_tokens: int) -> types.CreateMessageRequest:
    message = types.SamplingMessage(role="user", content=text(prompt))
    return types.CreateMessageRequest(params=types.CreateMessageRequestParams(messages=[message], max_tokens=max_tokens))


def _confirm() -> types.ElicitRequest:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    return types.ElicitRequest(params=types.ElicitRequestFormParams(message="Please confirm", requested_schema=schema))


def _answer(params: types.CallToolRequestParams, key: str) -> Any:
    return (params.input_responses or {}).get(key)


def _form_field(answer: Any, field: str, default: str) -> str:
    return answer.content.get(field, default) if isinstance(answer, types.ElicitResult) and answer.content else default


async def _ir_elicitation(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    answer = _answer(params, "user_name")
    if answer is not None:
        return f"Hello, {_form_field(answer, 'name', 'stranger')}!"
    return types.InputRequiredResult(input_requests={"user_name": _ask_name()})


async def _ir_sampling(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    answer = _answer(params, "capital_question")
    if answer is not None:
        said = answer.content.text if isinstance(answer, types.CreateMessageResult) and isinstance(answer.content, types.TextContent) else "?"
        return f"Model said: {said}"
    return types.InputRequiredResult(input_requests={"capital_question": _ask_model("What is the capital of France?", 100)})


async def _ir_roots(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    answer = _answer(params, "client_roots")
    if answer is not None:
        return f"Client exposed {len(answer.roots) if isinstance(answer, types.ListRootsResult) else 0} root(s)."
    return types.InputRequiredResult(input_requests={"client_roots": types.ListRootsRequest()})


async def _ir_request_state(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    if _answer(params, "confirm") is not None and params.request_state == "request-state-nonce":
        return "state-ok: confirmation received"
    return types.InputRequiredResult(input_requests={"confirm": _confirm()}, request_state="request-state-nonce")


async def _ir_multiple(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    if {"user_name", "greeting", "client_roots"} <= (params.input_responses or {}).keys():
        return "All inputs received."
    requests = {"user_name": _ask_name(), "greeting": _ask_model("Generate a greeting", 50), "client_roots": types.ListRootsRequest()}
    return types.InputRequiredResult(input_requests=requests, request_state="multiple-inputs")


async def _ir_multi_round(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    state = json.loads(params.request_state) if params.request_state else {"round": 0}
    if state["round"] == 1 and _answer(params, "step1") is not None:
        name = _form_field(_answer(params, "step1"), "name", "")
        color = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
        ask = types.ElicitRequest(params=types.ElicitRequestFormParams(message="Step 2: What is your favorite color?", requested_schema=color))
        return types.InputRequiredResult(input_requests={"step2": ask}, request_state=json.dumps({"round": 2, "name": name}))
    if state["round"] == 2 and _answer(params, "step2") is not None:
        return f"{state.get('name')} likes {_form_field(_answer(params, 'step2'), 'color', '')}."
    return types.InputRequiredResult(input_requests={"step1": _ask_name("Step 1: What is your name?")}, request_state=json.dumps({"round": 1}))


async def _ir_tampered(_ctx: Context, _args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    if params.request_state is None:
        return types.InputRequiredResult(input_requests={"confirm": _confirm()}, request_state="round-1")
    return f"state-ok: {params.request_state}"


async def _ir_capabilities(ctx: Context, _args: dict[str, Any], _params: types.CallToolRequestParams) -> Any:
    capabilities = ctx.session.client_capabilities
    requests: dict[str, Any] = {}
    if capabilities is None or capabilities.sampling is not None:
        requests["sample"] = _ask_model("Say hello", 50)
    if capabilities is None or capabilities.elicitation is not None:
        requests["ask"] = _ask_name()
    return types.InputRequiredResult(input_requests=requests, request_state="capability-gated")


INPUT_REQUIRED_TOOLS: dict[str, Handler] = {
    "test_input_required_result_elicitation": _ir_elicitation,
    "test_input_required_result_sampling": _ir_sampling,
    "test_input_required_result_list_roots": _ir_roots,
    "test_input_required_result_request_state": _ir_request_state,
    "test_input_required_result_multiple_inputs": _ir_multiple,
    "test_input_required_result_multi_round": _ir_multi_round,
    "test_input_required_result_tampered_state": _ir_tampered,
    "test_input_required_result_capabilities": _ir_capabilities,
}
