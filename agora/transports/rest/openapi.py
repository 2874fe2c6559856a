"""OpenAPI generated from the same pydantic models the catalog validates with."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic.json_schema import models_json_schema

from agora import __version__
from agora.catalog import Catalog, Tool

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["invalid_argument", "not_found", "permission_denied"]},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
SSE_DESCRIPTION = (
    "With 'Accept: text/event-stream': the call's events as they happen (for the chat: 'tool' for each tool call, "
    "'text' for the answer's words, 'notice'), then 'answer' with the result as application/json gives it, or 'error' "
    "with the error body."
)
_ERROR_RESPONSES = {
    status: {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for status, text in (
        ("400", "Invalid input"),
        ("401", "Missing or invalid API key"),
        ("403", "The key lacks the right"),
        ("404", "Not found (or not visible to the caller)"),
        ("409", "Conflict or failed precondition"),
        ("413", "Body too large"),
        ("415", "Body is not JSON"),
        ("422", "Input fails the schema"),
        ("503", "Unavailable (e.g. the hub is halted)"),
    )
}


def operation_docs(tool: Tool, method: str | None = None, path_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """Keyword arguments for ``add_api_route``; build_openapi fills in the schemas from the marker."""
    return {
        "summary": tool.name if method is None else f"{tool.name} (resource alias)",
        "description": tool.description,
        "tags": [tool.category],
        "deprecated": tool.deprecation_date is not None,
        "include_in_schema": True,
        "openapi_extra": {"x-agora-tool": tool.name, "x-agora-version": tool.version, "x-agora-path-fields": list(path_fields)},
    }


def _query_parameters(schema: dict[str, Any], skip: list[str]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
        if name not in skip
    ]


def build_openapi(app: FastAPI, catalog: Catalog) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    spec = get_openapi(
        title="Agora",
        version=__version__,
        description="Every tool of the catalog at /agora/{category}/{action}. Authenticate with 'Authorization: Bearer <key>'.",
        routes=app.routes,
    )
    tools = list(catalog)
    keys = [(t.input_model, "validation") for t in tools] + [(t.output_model, "serialization") for t in tools]
    refs, defs = models_json_schema(list(dict.fromkeys(keys)), ref_template="#/components/schemas/{model}")
    components = spec.setdefault("components", {})
    components.setdefault("schemas", {}).update(defs.get("$defs", {}))
    components["schemas"]["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    spec["security"] = [{"bearerAuth": []}]
    for path, operations in spec.get("paths", {}).items():
        for method, op in operations.items():
            name = op.pop("x-agora-tool", None)
            if name is None:
                continue
            tool = catalog.get(name)
            path_fields = op.pop("x-agora-path-fields", [])
            input_ref = refs[(tool.input_model, "validation")]
            if method in ("get", "delete"):
                input_schema = tool.input_model.model_json_schema(ref_template="#/components/schemas/{model}")
                op["parameters"] = [
                    {"name": f, "in": "path", "required": True, "schema": {"type": "string"}} for f in path_fields
                ] + _query_parameters(input_schema, path_fields)
                op.pop("requestBody", None)
            else:
                op["parameters"] = [{"name": f, "in": "path", "required": True, "schema": {"type": "string"}} for f in path_fields]
                op["requestBody"] = {"required": False, "content": {"application/json": {"schema": input_ref}}}
            op["operationId"] = f"{name}:{method}:{path}"
            op["responses"] = {
                "200": {"description": "Result", "content": {"application/json": {"schema": refs[(tool.output_model, "serialization")]}}},
                **_ERROR_RESPONSES,
            }
            if tool.streams_events:
                op["responses"]["200"]["content"]["text/event-stream"] = {"schema": {"type": "string", "description": SSE_DESCRIPTION}}
            if tool.answers_accepted:
                op["responses"]["202"] = {
                    "description": "Accepted: the result is the state of work that goes on in the background",
                    "content": {"application/json": {"schema": refs[(tool.output_model, "serialization")]}},
                }
    app.openapi_schema = spec
    return spec
