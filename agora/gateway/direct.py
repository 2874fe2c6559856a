"""A ``tools/call`` to a stateless (2026-07-28) MCP server sent as one POST, without the SDK client's machinery.

On that revision a call is a self-contained request, so the hub can send it itself on the HTTP client (and egress
policy) the SDK client holds for the server: the envelope the SDK's client sends (routing headers, the ``_meta`` with
protocol version, client info and capabilities), and the answer checked as it checks one (a ``CallToolResult``,
structured content that fits the tool's output schema). The SDK client spends ~3 ms of CPU per call here (its
dispatcher, streams and models); this costs a few hundred µs. Calls that need more than one exchange or a callback
stay with the SDK client: a tool whose arguments are mirrored into ``Mcp-Param-*`` headers, a call whose caller
wants progress, a call the server refuses for its routing headers (the SDK client re-lists the tool and resends).
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx2
import jsonschema
import mcp_types as types
import orjson
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import encode_header_value, x_mcp_header_map

from agora import __version__

CLIENT_INFO = {"name": "agora", "version": __version__}


class MisroutedCall(Exception):
    """The server refused the call for its routing headers: the SDK client re-lists the tool and sends it again."""


class DirectCalls:
    def __init__(self, url: str, http: httpx2.AsyncClient, protocol_version: str, capabilities: dict[str, Any]):
        self.url, self.http, self.protocol_version = url, http, protocol_version
        self.meta = {
            types.PROTOCOL_VERSION_META_KEY: protocol_version,
            types.CLIENT_INFO_META_KEY: CLIENT_INFO,
            types.CLIENT_CAPABILITIES_META_KEY: capabilities,
        }
        self._ids = itertools.count(1)
        self._output_checks: dict[str, tuple[Any, Any]] = {}  # tool -> (its output schema, that schema's validator)

    @staticmethod
    def takes(listing: types.Tool) -> bool:
        """Whether a call of this tool can go direct: none of its arguments travel in ``Mcp-Param-*`` headers."""
        return not x_mcp_header_map(listing.input_schema)

    async def call(self, listing: types.Tool, arguments: dict[str, Any]) -> types.CallToolResult:
        """The tool's result; ``MCPError`` for the server's JSON-RPC error (``MisroutedCall`` for a refusal of the
        routing headers), ``ValueError`` for an answer that is not a tool's result, ``RuntimeError`` for structured
        content that breaks the tool's output schema."""
        request_id = next(self._ids)
        params = {"name": listing.name, "arguments": arguments, "_meta": self.meta}
        headers = {
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "Mcp-Protocol-Version": self.protocol_version, "Mcp-Method": "tools/call", "Mcp-Name": encode_header_value(listing.name),
        }  # fmt: skip
        body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params})
        response = await self.http.post(self.url, content=body, headers=headers)
        message = _answer(response, request_id)
        if "error" in message:
            error = types.ErrorData.model_validate(message["error"])
            if error.code == types.HEADER_MISMATCH:
                raise MisroutedCall(error.message)
            raise MCPError.from_error_data(error)
        result = types.CallToolResult.model_validate(message.get("result"))
        if not result.is_error:
            self._check_output(listing, result)
        return result

    def _check_output(self, listing: types.Tool, result: types.CallToolResult) -> None:
        """As the SDK client does: structured content is required by an output schema and must fit it."""
        schema = listing.output_schema
        if schema is None:
            return
        if result.structured_content is None:
            raise RuntimeError(f"Tool {listing.name} has an output schema but did not return structured content")
        checked, check = self._output_checks.get(listing.name, (None, None))
        if checked is not schema:  # a new listing: its schema may have changed
            check = jsonschema.validators.validator_for(schema)(schema)
            self._output_checks[listing.name] = (schema, check)
        error = jsonschema.exceptions.best_match(check.iter_errors(result.structured_content))
        if error is not None:
            raise RuntimeError(f"Invalid structured content returned by tool {listing.name}: {error.message}")


def _answer(response: httpx2.Response, request_id: int) -> dict[str, Any]:
    """The JSON-RPC message answering ``request_id``: the body, or the last one of an event stream."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        message = orjson.loads(response.content)
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    elif kind == "text/event-stream":
        for event in response.text.replace("\r\n", "\n").replace("\r", "\n").split("\n\n"):
            data = "\n".join(line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:"))
            message = orjson.loads(data) if data else None
            if isinstance(message, dict) and message.get("id") == request_id and ("result" in message or "error" in message):
                return message
    raise ValueError(f"HTTP {response.status_code} ({kind or 'no content type'}) with no answer to the call")
