"""The Agent Bus door (seed 004): ``POST /bus/publish`` maps an envelope onto one Agora tool call.

Completing or failing a task needs its lease, as everywhere: ``content.lease_token`` (from ``agora.task.claim``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from agora.catalog.registry import invalid_input
from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.services.acting import check_sender
from agora_sdk.errors import InvalidArgument
from agora_sdk.wire.bus import BusAccepted, BusEnvelope, BusMessageType

from .guard import guarded
from .inputs import read_json_body

PRIORITIES = {"high": "high", "medium": "normal", "low": "low"}
TASK_FIELDS = ("task_type", "required_capabilities", "deadline", "max_attempts", "depends_on")


def mount(app: FastAPI) -> None:
    app.add_api_route("/bus/publish", publish, methods=["POST"], include_in_schema=False)


async def publish(request: Request) -> Response:
    async def run(hub: Hub, principal: Principal) -> Response:
        raw = await read_json_body(request)
        try:
            envelope = BusEnvelope.model_validate(raw)
        except ValidationError as exc:
            raise invalid_input("the Agent Bus envelope", exc) from None
        await check_sender(hub, principal, envelope.sender)
        tool, args = to_tool_call(envelope)
        request.scope["state"]["tool"] = tool
        _, result, _ = await hub.catalog.call(hub, principal, tool, args, request.scope["state"]["request_id"])
        accepted = BusAccepted(message_id=envelope.message_id, tool=tool, result=result.model_dump(mode="json"))
        return Response(accepted.model_dump_json(), media_type="application/json")

    return await guarded(request, "bus.publish", run)


def to_tool_call(envelope: BusEnvelope) -> tuple[str, dict[str, Any]]:
    content = envelope.content
    kind = envelope.type
    if kind is BusMessageType.task_assignment:
        args: dict[str, Any] = {
            "task_type": content.get("task_type", "bus_task"),
            "payload": content,
            "priority": PRIORITIES[envelope.priority.value],
            "idempotency_key": f"bus:{envelope.message_id}",
            **{k: content[k] for k in TASK_FIELDS if k in content and k != "task_type"},
        }
        if envelope.target:
            args["assignee"] = envelope.target
        return "agora.task.assign", args
    if kind is BusMessageType.task_completion or (kind is BusMessageType.error_report and "task_id" in content):
        failed = kind is BusMessageType.error_report or content.get("status") == "failed"
        args = {"task_id": _required(content, "task_id"), "lease_token": content.get("lease_token"), "status": "failed" if failed else "completed"}
        if failed:
            args["notes"] = str(content.get("error") or content.get("notes") or "error reported")[:4000]
            args["retry"] = bool(content.get("retryable", False))
        else:
            args["result"] = content.get("result")
        return "agora.task.update", {k: v for k, v in args.items() if v is not None}
    if kind in (BusMessageType.state_update, BusMessageType.error_report):
        status = "error" if kind is BusMessageType.error_report else content.get("status")
        note = str(content.get("error") or content.get("note") or "")[:1000] or None
        return "agora.agents.heartbeat", {k: v for k, v in {"status": status, "note": note}.items() if v is not None}
    return "agora.messaging.send", {
        "to_agent": envelope.target or "broadcast",
        "content": content,
        "message_type": "assistance_request",
        "performative": "request",
        "priority": PRIORITIES[envelope.priority.value],
        "idempotency_key": f"bus:{envelope.message_id}",
        **({"correlation": {"conversation_id": envelope.correlation_id}} if envelope.correlation_id else {}),
    }


def _required(content: dict[str, Any], field: str) -> Any:
    if field not in content:
        raise InvalidArgument(f"content.{field} is required for this message type", details={"field": f"content.{field}"}, status=422)
    return content[field]
