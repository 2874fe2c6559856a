"""The catalog as data: ``agora.discovery.*`` reads it live, ``agora.query.services`` reads its stored copy."""

from __future__ import annotations

from datetime import date

from pydantic import Field

from .common import Input, JSONObject, Listing, Output, ToolStatus, UtcDatetime


class ListTools(Input):
    category: str | None = Field(None, max_length=64)
    status: ToolStatus | None = None
    version: str | None = Field(None, max_length=100, description="A version range such as '>=1.0,<2'.")
    text: str | None = Field(None, max_length=200, description="Words to find in name or description.")


class ToolInfo(Output):
    name: str
    version: str
    category: str
    status: ToolStatus
    description: str
    read_only: bool
    refused_when_halted: bool = Field(description="Whether the tool is refused while an administrator halts the hub.")
    scopes: list[str]
    deprecation_date: date | None = None
    sunset_date: date | None = None
    replacement: str | None = None
    last_updated: UtcDatetime


class ToolList(Listing):
    items_field = "services"

    services: list[ToolInfo]
    count: int


class SchemaRequest(Input):
    positional_args = ("name",)

    name: str = Field(min_length=1, max_length=128)
    version: str | None = Field(None, max_length=100, description="An exact version or a range; default: the served one.")


class ToolSchema(Output):
    name: str
    version: str
    status: ToolStatus
    description: str
    input_schema: JSONObject
    output_schema: JSONObject
    http: JSONObject = Field(description="How the REST door serves it: methods and path.")


class QueryServices(Input):
    category: str | None = Field(None, max_length=64)
    version: str | None = Field(None, max_length=100, description="An exact version or a range such as '>=1.0,<2'.")
    status: ToolStatus | None = None


class Service(Output):
    service_id: str
    service_name: str
    version: str
    category: str
    description: str
    status: ToolStatus
    created_at: UtcDatetime
    updated_at: UtcDatetime
    schema_: JSONObject = Field(alias="schema", serialization_alias="schema")


class ServiceList(Listing):
    items_field = "services"

    services: list[Service]
    count: int


class ToolSearch(Input):
    positional_args = ("text",)

    text: str | None = Field(None, max_length=200, description="Words to find in tool names (weighted) and descriptions.")
    category: str | None = Field(None, max_length=64)
    limit: int = Field(10, ge=1, le=100)


class ToolMatch(Output):
    name: str
    category: str
    description: str
    read_only: bool
    input_schema: JSONObject


class ToolMatches(Listing):
    items_field = "tools"

    tools: list[ToolMatch]
    count: int


class ToolCall(Input):
    positional_args = ("name", "arguments")

    name: str = Field(min_length=1, max_length=128, description="The tool to call, e.g. agora.messaging.send.")
    arguments: JSONObject = Field(default_factory=dict, description="Its input, as agora.discovery.schema describes it.")


class ToolCallResult(Output):
    name: str
    result: JSONObject
