"""agora.mcp_servers.*: the gateway's external MCP servers."""

from agora.core.auth import Scope
from agora.core.services import gateway
from agora_sdk.wire import gateway as w

from ..tool import Tool

READ = frozenset({Scope.mcp_servers_read.value})
WRITE = frozenset({Scope.mcp_servers_write.value})

TOOLS = [
    Tool(
        name="agora.mcp_servers.register",
        version="1.0.0",
        description=(
            "Add an external MCP server, by Streamable HTTP url (with headers or a bearer token the hub keeps) or by "
            "stdio command (started and supervised by the hub). Its tools join the catalog as ext.<name>.<tool>, "
            "for the caller's tenant (an admin may share it with every tenant). Only the admin may register a stdio command."
        ),
        input_model=w.RegisterMcpServer,
        output_model=w.McpServer,
        handler=gateway.register,
        scopes=WRITE,
    ),
    Tool(
        name="agora.mcp_servers.list",
        version="1.0.0",
        description="The external MCP servers this caller sees: transport, state (up, down, connecting), imported tools, last error.",
        input_model=w.ListMcpServers,
        output_model=w.McpServerList,
        handler=gateway.list_servers,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.mcp_servers.remove",
        version="1.0.0",
        description="Remove an external MCP server: its connection closes and its ext.<name>.* tools leave the catalog.",
        input_model=w.McpServerRef,
        output_model=w.McpServerRemoved,
        handler=gateway.remove,
        scopes=WRITE,
    ),
]
