"""``agora mcp``: the hub as a local stdio MCP server, for desktop MCP clients."""

from __future__ import annotations

from typing import Annotated

import anyio
import typer

from agora_sdk import AgoraClient

from .connection import CLI_RETRIES
from .output import EXIT_UNAVAILABLE, fail, friendly_errors

CONFIG_EXAMPLE = (
    'Claude Desktop / Cursor: {"mcpServers": {"agora": {"command": "agora", "args": ["mcp"], '
    '"env": {"AGORA_URL": "http://127.0.0.1:8080", "AGORA_API_KEY": "agora_sk_…"}}}}'
)


def mcp(
    toolsets: Annotated[
        str | None,
        typer.Option(envvar="AGORA_MCP_TOOLSETS", help="Only these tool categories, comma-separated (e.g. messaging,task); the search/call meta-tools always stay."),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", envvar="AGORA_URL", help="Hub URL (default http://127.0.0.1:8080).")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="AGORA_API_KEY", help="API key the hub knows you by (an agent's token acts as that agent).")] = None,
    data_dir: Annotated[str | None, typer.Option("--data-dir", envvar="AGORA_DATA_DIR", help="Local hub data directory (its admin.key is the default key).")] = None,
) -> None:
    """Serve MCP on stdin/stdout, forwarding every request to the hub (for Claude Desktop, Cursor, VS Code, …)."""
    from agora.core.exception_groups import innermost
    from agora.transports.mcp.stdio import serve_stdio  # the server side of mcp loads only for this command

    with friendly_errors(), AgoraClient(url, api_key, data_dir=data_dir, retries=CLI_RETRIES) as client:
        # Said now, in one line, rather than as a failed first call inside the desktop client.
        categories = {tool.category for tool in client.discovery.list().services} | {"ext"}
        config = client.config
    unknown = sorted({t.strip() for t in (toolsets or "").split(",") if t.strip()} - categories)
    if unknown:
        raise fail(f"unknown toolset(s) {', '.join(unknown)}; the categories are {', '.join(sorted(categories))}")
    try:
        anyio.run(serve_stdio, config, toolsets)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the start, say it in one line
        raise fail(f"MCP over stdio stopped: {innermost(exc)}", EXIT_UNAVAILABLE) from None
