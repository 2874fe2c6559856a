"""What a tool call answers over MCP: a catalog tool's output, an imported tool's own result, or a failure."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import orjson

from agora.catalog.tool import EXT_PREFIX
from agora_sdk.errors import AgoraError


def result(structured: dict[str, Any]) -> types.CallToolResult:
    """Structured content plus the same JSON as text, for clients that only read text."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=orjson.dumps(structured, default=str).decode())],
        structured_content=structured,
    )


def output_result(name: str, output: dict[str, Any]) -> dict[str, Any]:
    """A tool's output JSON as the CallToolResult JSON its call answers (an imported tool's: the upstream's own)."""
    if name.startswith(EXT_PREFIX):
        return {"content": output["content"], "structuredContent": output["structured_content"], "isError": output["is_error"]}
    return result(output).model_dump(mode="json", by_alias=True, exclude_none=True)


ERROR_META = "agora/error"  # where an isError result carries the error body: code, message, details


def failure(exc: AgoraError) -> types.CallToolResult:
    return types.CallToolResult.model_validate(failed(exc.to_body()["error"]))


def failed(error: dict[str, Any]) -> dict[str, Any]:
    """The CallToolResult JSON of a tool's failure with this error body."""
    return {"content": [{"type": "text", "text": f"{error['code']}: {error['message']}"}], "_meta": {ERROR_META: error}, "isError": True}
