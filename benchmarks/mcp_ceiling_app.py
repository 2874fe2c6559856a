"""The MCP ceiling: a minimal server built with the ``mcp`` SDK (``MCPServer``) exposing one trivial tool.

Served exactly as ``agora serve`` serves the hub (same uvicorn options), with Streamable HTTP at ``/mcp``. What the
hub's ``tools/call`` costs beyond this (authentication, the catalog, validation, the database) is what the ratio
to this ceiling measures.
"""

from __future__ import annotations

import argparse

import uvicorn
from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

from agora.cli.serve import UVICORN_OPTIONS

TOOL = "echo"

server = MCPServer("mcp-ceiling", log_level="WARNING")


@server.tool(name=TOOL)
def echo(text: str) -> dict[str, str]:
    """Return the text it was given."""
    return {"text": text}


async def ready(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ready"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    app = server.streamable_http_app()
    app.add_route("/ready", ready)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, **UVICORN_OPTIONS)  # exactly as agora serve
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
