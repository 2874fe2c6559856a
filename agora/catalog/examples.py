"""An example input for each tool, shown on its reference page in every door's words (``docgen``).

The example is input the tool's model accepts (``tests/test_docs.py`` holds every tool to that): its required fields,
plus those a rule across fields needs (a message needs a recipient), with values a reader recognises — names from the
guides, ids of the right shape — rather than placeholders the hub would refuse before reading them.
"""

from __future__ import annotations

import re
from typing import Any

from .tool import Tool

# A field's example, by its name, wherever the tool has no example of its own below.
BY_FIELD: dict[str, Any] = {
    "agent": "DocWriter", "agent_id": "calculator", "agent_name": "DocWriter", "amount": "50.00",
    "capability_type": "documentation", "capacity_cpu": 4, "capacity_memory_mb": 8192, "content": "hello",
    "conversation_id": "launch-42", "customer": "acme", "email": "alice@acme.example", "endpoint": "add",
    "idempotency_key": "po-2026-117", "instance_id": "inst_6b0bf380966278b80a2ffe6a", "listing": "calculator",
    "message": "find a French translator under a cent a request", "monthly_limit": "200", "q": "translate legal documents",
    "rating": 5, "reason": "links to a scam", "report_id": "call-42", "schedule": "weekly-report",
    "target_id": "DocWriter", "task_type": "summarize", "text": "Thanks: 1.2 fixes the rounding", "topic": "builds.done",
    "trigger": "0 9 * * 1", "units": {"input_tokens": 1200}, "user": "alice@acme.example", "url": "https://mcp.example.org/mcp",
    "workflow_name": "data_pipeline", "start_command": "python agent.py",
}  # fmt: skip

# What a tool's example needs beyond its fields' own examples: a rule across fields, or a name of another shape.
BY_TOOL: dict[str, dict[str, Any]] = {
    "agora.messaging.send": {"to_agent": "DocWriter"},
    "agora.messaging.send_batch": {"messages": [{"to_agent": "DocWriter", "content": "hello"}, {"to_agent": "broadcast", "content": "hi all"}]},
    "agora.messaging.ack": {"message_ids": ["msg_" + "6b0bf3c0fdfe9eae44e310d1"]},
    "agora.task.assign": {"required_capabilities": ["summarize"]},
    "agora.task.assign_batch": {"tasks": [{"task_type": "summarize", "required_capabilities": ["summarize"], "payload": {"url": "https://example.org"}}]},
    "agora.task.reassign": {"assignee": "DocWriter"},
    "agora.task.emit": {"chunks": [{"text": "Once upon a time"}]},
    "agora.workflow.modify": {"remove": ["review"]},
    "agora.a2a.update": {"state": "working"},
    "agora.messaging.subscribe": {"topics": ["builds.*"]},
    "agora.conversations.send": {"text": "Now the budget, please"},
    "agora.hosting.report": {"status": "running"},
    "agora.hosting.register_node": {"name": "node-1"},
    "agora.mcp_servers.register": {"name": "docs", "url": "https://mcp.example.org/mcp"},
    "agora.mcp_servers.remove": {"name": "docs"},
    "agora.schedules.create": {
        "name": "weekly-report", "action": {"task": {"task_type": "report.weekly", "required_capabilities": ["reports"]}},
    },
    "agora.tools.call": {"name": "agora.messaging.send", "arguments": {"to_agent": "DocWriter", "content": "hello"}},
    "agora.tools.start": {"name": "agora.marketplace.execute", "arguments": {"instance_id": "inst_6b0bf380966278b80a2ffe6a", "endpoint": "add"}},
    "agora.workflow.signal": {"step": "review"},
}

_ID = re.compile(r"^\^(\w+?)_\(\?:\[0-9a-f\]\{24\}")  # ^task_(?:[0-9a-f]{24}|[0-9a-f]{16})$
_HEX = "6b0bf3c0fdfe9eae44e310d1"


def arguments(tool: Tool) -> dict[str, Any]:
    """The tool's example input, its fields in the schema's order."""
    schema = tool.input_schema()
    extra = BY_TOOL.get(tool.name, {})
    wanted = [n for n in schema.get("properties", {}) if n in schema.get("required", []) or n in extra]
    return {n: extra[n] if n in extra else value(n, schema["properties"][n], schema.get("$defs", {})) for n in wanted}


def value(name: str, prop: dict[str, Any], defs: dict[str, Any]) -> Any:
    """An example of one field: its default, its first choice, a readable value of its shape."""
    if "$ref" in prop:
        return value(name, defs[prop["$ref"].rsplit("/", 1)[1]], defs)
    if "default" in prop:
        return prop["default"]
    if "const" in prop:
        return prop["const"]
    if "enum" in prop:
        return prop["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return value(name, next((p for p in prop[key] if p.get("type") != "null"), {}), defs)
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if name in BY_FIELD and "properties" not in prop:
        return BY_FIELD[name]
    if kind == "string":
        return _string(name, prop)
    if kind == "array":
        return [value(name, prop.get("items", {}), defs)] if prop.get("minItems") else []
    if kind == "object" or "properties" in prop:
        required = prop.get("required", [])
        return {n: value(n, p, defs) for n, p in prop.get("properties", {}).items() if n in required}
    return {"integer": max(1, prop.get("minimum", 1)), "number": 1.0, "boolean": True}.get(kind or "", f"<{name}>")


def _string(name: str, prop: dict[str, Any]) -> str:
    pattern = prop.get("pattern", "")
    if found := _ID.match(pattern):
        return f"{found[1]}_{_HEX}"
    if pattern.startswith("^lease_"):
        return "lease_" + _HEX + "0123456789abcdef"[:8]
    if prop.get("format") == "date-time":
        return "2026-12-01T09:00:00Z"
    return name.replace("_", "-") if re.fullmatch(pattern or ".*", name.replace("_", "-")) else f"<{name}>"
