"""The Agent Communication Protocol door (seed 001), a view of messaging for agents written against that envelope.

``POST /agent/message`` takes an envelope and sends one message per ``to`` entry through ``agora.messaging.send_batch``;
the answer is a ``confirm`` envelope listing the message ids. A ``deploy`` envelope addressed to the marketplace (seed
001's deployment request) is ``agora.marketplace.deploy`` instead: the answer is the ``deploy_confirm`` or
``deploy_failure`` envelope. ``GET /agent/messages`` (``wait``, ``limit``,
``visibility_timeout``, … as ``agora.messaging.receive``) returns the caller's inbox as envelopes; acks go through
``agora.messaging.ack`` as for any message. A reply names the request's envelope ``id`` (its Agora message id) in
``correlation.reply_to``, which also stops the request's ``expected.timeout``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from agora.catalog.registry import invalid_input
from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.services.acting import check_sender
from agora_sdk.wire.acp import CONTEXT_KEY, Envelope, EnvelopeInbox, EnvelopeOut, is_performative
from agora_sdk.wire.common import id_pattern
from agora_sdk.wire.messaging import BROADCAST, BatchReceipt, Inbox, Message, Receive

from .guard import guarded
from .inputs import query_input, read_json_body

SEND = "agora.messaging.send_batch"
RECEIVE = "agora.messaging.receive"
DEPLOY = "agora.marketplace.deploy"
# The hub's marketplace as seed 001 addresses it: a "deploy" envelope sent there is a deployment, not a message.
MARKETPLACE = {"marketplace", "agora.marketplace", "agent.marketplace.orchestrator"}
_MESSAGE_ID = re.compile(id_pattern("msg"))


def mount(app: FastAPI) -> None:
    app.add_api_route("/agent/message", post_message, methods=["POST"], include_in_schema=False)
    app.add_api_route("/agent/messages", get_messages, methods=["GET"], include_in_schema=False)


async def post_message(request: Request) -> Response:
    async def run(hub: Hub, principal: Principal) -> Response:
        raw = await read_json_body(request)
        try:
            envelope = Envelope.model_validate(raw)
        except ValidationError as exc:
            raise invalid_input("the ACP envelope", exc) from None
        await check_sender(hub, principal, envelope.sender)
        if envelope.type == "deploy" and MARKETPLACE & set(envelope.to):
            return await _deploy(hub, principal, envelope, request.scope["state"]["request_id"])
        args = {"messages": [_message_args(envelope, to) for to in envelope.to]}
        _, result, _ = await hub.catalog.call(hub, principal, SEND, args, request.scope["state"]["request_id"])
        assert isinstance(result, BatchReceipt)
        receipts = [{"to": to, "message_id": r.message_id, "status": r.status} for to, r in zip(envelope.to, result.receipts)]
        confirm = EnvelopeOut(
            id=result.receipts[0].message_id,
            ts=result.receipts[0].timestamp,
            type="confirm",
            sender="agora",
            to=[principal.agent_id or principal.label],
            intent="accepted",
            payload={"messages": receipts},
            correlation={"reply_to": envelope.id} if envelope.id else None,
        )
        return Response(confirm.model_dump_json(exclude_none=True), media_type="application/json")

    return await guarded(request, SEND, run)


async def _deploy(hub: Hub, principal: Principal, envelope: Envelope, request_id: str) -> Response:
    """A deploy request becomes agora.marketplace.deploy; the answer envelope is the deploy_confirm or deploy_failure
    that also reaches the requester's inbox."""
    payload = envelope.payload if isinstance(envelope.payload, dict) else {}
    co_location = payload.get("co_location") or {}
    args: dict[str, Any] = {
        "agent_id": payload.get("agent_id"),
        "instance_config": payload.get("instance_config") or {},
    }
    if co_location.get("with_agent"):
        args["co_location"] = {k: co_location[k] for k in ("with_agent", "required", "reason") if k in co_location}
    if payload.get("preferred_region"):
        args["preferred_region"] = payload["preferred_region"]
    _, result, _ = await hub.catalog.call(hub, principal, DEPLOY, args, request_id)
    answer = EnvelopeOut(
        id=result.message_id or envelope.id or "", ts=hub.clock.now(), type=result.outcome, sender="agora",
        to=[principal.agent_id or principal.label], intent="agent_deployed" if result.outcome == "deploy_confirm" else "deploy_failed",
        payload=result.payload, correlation={"reply_to": envelope.id} if envelope.id else None,
    )  # fmt: skip
    return Response(answer.model_dump_json(exclude_none=True), media_type="application/json")


async def get_messages(request: Request) -> Response:
    async def run(hub: Hub, principal: Principal) -> Response:
        args = query_input(request, Receive)
        _, result, _ = await hub.catalog.call(hub, principal, RECEIVE, args, request.scope["state"]["request_id"])
        assert isinstance(result, Inbox)
        inbox = EnvelopeInbox(envelopes=[envelope_of(m) for m in result.messages], count=result.count)
        return Response(inbox.model_dump_json(exclude_none=True), media_type="application/json")

    return await guarded(request, RECEIVE, run)


def _message_args(envelope: Envelope, to: str) -> dict[str, Any]:
    """One agora.messaging.send input for one recipient of the envelope."""
    acp: dict[str, Any] = {"task": envelope.task, "envelope_id": envelope.id, "ts": envelope.ts.isoformat() if envelope.ts else None}
    if envelope.status is not None:
        acp["status"] = envelope.status.model_dump(exclude_none=True)
    correlation: dict[str, Any] = {}
    if envelope.correlation is not None:
        if envelope.correlation.conversation_id:
            correlation["conversation_id"] = envelope.correlation.conversation_id
        reply_to = envelope.correlation.reply_to
        if reply_to and _MESSAGE_ID.match(reply_to):
            correlation["reply_to"] = reply_to
        elif reply_to:
            acp["reply_to"] = reply_to  # an id from outside Agora: kept, but it names no message here
    args: dict[str, Any] = {
        "to_agent": to,
        "content": envelope.payload if envelope.payload is not None else {},
        "message_type": "acp" if is_performative(envelope.type) else envelope.type,
        "intent": envelope.intent,
        "context": {**envelope.context, CONTEXT_KEY: {k: v for k, v in acp.items() if v is not None}},
    }
    if is_performative(envelope.type):
        args["performative"] = envelope.type
    if correlation:
        args["correlation"] = correlation
    if envelope.expected is not None:
        args["expected"] = {"type": envelope.expected.type, "timeout_ms": envelope.expected.timeout}
    if envelope.id is not None:  # one key per recipient, within the 128 characters a key may have
        args["idempotency_key"] = "acp:" + hashlib.sha256(f"{envelope.id}\0{to}".encode()).hexdigest()
    return args


def envelope_of(message: Message) -> EnvelopeOut:
    context = dict(message.context)
    acp = context.pop(CONTEXT_KEY, None)
    acp = acp if isinstance(acp, dict) else {}
    correlation = dict(message.correlation or {})
    if "reply_to" not in correlation and acp.get("reply_to"):
        correlation["reply_to"] = acp["reply_to"]
    if message.to_agent:
        to = [message.to_agent]
    else:
        to = [BROADCAST] if message.kind == "broadcast" else [f"topic:{message.topic}"]
    return EnvelopeOut(
        id=message.message_id,
        ts=message.timestamp,
        type=message.performative.value if message.performative else message.message_type,
        sender=message.from_agent,
        to=to,
        intent=message.intent,
        task=acp.get("task"),
        payload=message.content,
        context=context,
        correlation=correlation or None,
        expected={"type": message.expected.get("type"), "timeout": message.expected.get("timeout_ms")} if message.expected else None,
        status=acp.get("status"),
        cursor=message.cursor,
        delivery_count=message.delivery_count,
    )
