"""The MCP gateway: external MCP servers registered with the hub, their tools imported as ``ext.<server>.<tool>``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, model_validator

from .common import HeaderText, Input, JSONObject, JSONValue, Listing, Output, RedactedUrl, UtcDatetime

ServerName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=48,
        pattern=r"^[a-z][a-z0-9_-]*$",
        description="Short lowercase name; its tools become ext.<name>.<tool>.",
    ),
]


HeaderName = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]


class Transport(StrEnum):
    http = "http"  # Streamable HTTP, by URL
    stdio = "stdio"  # a command the hub starts and supervises


class UpstreamState(StrEnum):
    connecting = "connecting"
    up = "up"
    down = "down"  # its tools are listed as unavailable and calls get 503 until it is back


class RegisterMcpServer(Input):
    """Either ``url`` (Streamable HTTP) or ``command`` (stdio), never both."""

    positional_args: ClassVar[tuple[str, ...]] = ("name",)

    name: ServerName
    url: str | None = Field(None, max_length=2048, pattern=r"^https?://", description="Streamable HTTP endpoint of the server.")
    headers: dict[HeaderName, HeaderText] = Field(
        default_factory=dict, max_length=50, description="Headers the hub sends upstream (kept by the hub, never shown).",
        json_schema_extra={"additionalProperties": False},  # a name off the pattern is refused, as the schema now says
    )
    bearer_token: HeaderText | None = Field(None, description="Sent as 'Authorization: Bearer …' (kept by the hub, never shown).")
    command: str | None = Field(None, min_length=1, max_length=1024, description="Executable the hub starts for a stdio server.")
    args: list[str] = Field(default_factory=list, max_length=64)
    env: dict[str, str] = Field(default_factory=dict, description="Environment of the stdio command (kept by the hub, never shown).")
    tenant: str | None = Field(None, description="Admin only: the tenant that sees it; unset, every tenant does.")
    timeout_seconds: float = Field(30.0, gt=0, le=600, description="How long one upstream call may take before it fails.")

    @model_validator(mode="after")
    def _one_transport(self) -> RegisterMcpServer:
        if (self.url is None) == (self.command is None):
            raise ValueError("give either url (Streamable HTTP) or command (stdio)")
        if self.url is None and (self.headers or self.bearer_token):
            raise ValueError("headers and bearer_token are for url servers; a stdio server takes env")
        return self


class McpServerRef(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("name",)

    name: ServerName


class ListMcpServers(Input):
    """No arguments: the servers the caller sees."""


class McpServer(Output):
    """A registered server as the hub sees it now; secrets (headers, token, env) are never returned."""

    server_id: str
    name: str
    tenant_id: str | None
    transport: Transport
    url: RedactedUrl | None = Field(None, description="Credentials in the URL (user:token@) read back as '********'.")
    command: str | None = None
    args: list[str] = Field(default_factory=list)
    state: UpstreamState = UpstreamState.connecting
    tools: list[str] = Field(default_factory=list, description="Imported tool names (ext.<server>.<tool>).")
    last_error: str | None = None
    connected_at: UtcDatetime | None = None
    registered_at: UtcDatetime


class McpServerList(Listing):
    items_field: ClassVar[str] = "servers"

    servers: list[McpServer]
    count: int


class McpServerRemoved(Output):
    name: str
    removed: bool


class ExtArguments(Input):
    """Any arguments: the upstream server validates them against its own schema."""

    model_config = ConfigDict(extra="allow")


class ExtResult(Output):
    """An upstream tool's answer, as MCP gives it: content blocks, structured content, and whether it is an error."""

    content: list[JSONObject]
    structured_content: JSONValue = None
    is_error: bool = False
