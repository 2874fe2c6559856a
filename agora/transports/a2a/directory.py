"""The hub itself as an A2A agent (``/a2a``, card at ``/.well-known/agent-card.json``): a directory of the agents it
hosts, so any A2A client can find them.

It answers every message with a message (it keeps no tasks): ``find_agents`` (capabilities and/or words, from a data
part ``{"capabilities": [...], "text": "..."}`` or plain text) lists matching agents with A2A fronts and their card
URLs; ``describe_agent`` (a data part ``{"describe_agent": "<id or name>"}`` or the text ``describe <id or name>``)
gives one agent's details. Anonymous callers see public fronts; a caller with a key also sees its tenant's private
ones.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict

from a2a.server.context import ServerCallContext
from a2a.server.events import Event as A2AEvent
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import PushNotificationNotSupportedError, TaskNotFoundError, UnsupportedOperationError
from agora.core.auth import Principal
from agora.core.context import Hub
from agora.core.ids import new_id
from agora.store.ops import agents as agent_ops
from agora_sdk.errors import AgoraError

from .handler import a2a_errors

LIMIT = 20
SKILLS = [
    pb.AgentSkill(
        id="find_agents", name="Find agents",
        description="Agents hosted here with the given capabilities or words, each with its A2A card URL. Send text, "
        'or a data part {"capabilities": ["review"], "text": "python"}.',
        tags=["directory", "discovery", "search"], examples=["find agents that can review code", "translation"],
    ),
    pb.AgentSkill(
        id="describe_agent", name="Describe an agent",
        description='One agent\'s description, capabilities, skills and card URL. Send "describe <id or name>", or '
        'a data part {"describe_agent": "<id or name>"}.',
        tags=["directory", "describe"], examples=["describe ReviewAgent"],
    ),
]  # fmt: skip
PUBLIC = ("public",)
ANY_FRONT = ("private", "public")


@dataclass
class Caller:
    hub: Hub
    principal: Principal | None
    base: str  # the hub's URL, for card links


def _request(message: pb.Message) -> tuple[dict[str, Any], str]:
    data: dict[str, Any] = {}
    for part in message.parts:
        if part.HasField("data"):
            value = MessageToDict(part)["data"]
            if isinstance(value, dict):
                data.update(value)
    text = " ".join(p.text for p in message.parts if p.text).strip()
    return data, text


class DirectoryHandler(RequestHandler):
    async def on_message_send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> pb.Message:
        caller: Caller = context.state["front"]
        data, text = _request(params.message)
        with a2a_errors():
            target = data.get("describe_agent") or (text[len("describe ") :].strip() if text.lower().startswith("describe ") else None)
            if target:
                found = await self._describe(caller, str(target))
                summary = f"{found['name']}: {found['description']}" if found else f"no agent '{target}' here"
                payload: dict[str, Any] = {"agent": found}
            else:
                capabilities = [str(c) for c in data.get("capabilities") or []]
                words = str(data.get("text") or ("" if capabilities else text)) or None
                agents = await self._find(caller, capabilities, words)
                summary = f"{len(agents)} agent(s): " + ", ".join(a["name"] for a in agents) if agents else "no agents match"
                payload = {"agents": agents}
        reply = {
            "messageId": new_id("msg"), "role": "ROLE_AGENT", "contextId": params.message.context_id or new_id("ctx"),
            "parts": [{"text": summary}, {"data": payload}],
        }  # fmt: skip
        return ParseDict(reply, pb.Message())

    async def on_message_send_stream(self, params: pb.SendMessageRequest, context: ServerCallContext) -> AsyncGenerator[A2AEvent]:
        yield await self.on_message_send(params, context)

    async def _find(self, caller: Caller, capabilities: list[str], text: str | None) -> list[dict[str, Any]]:
        """Public fronts anywhere, and (for a caller with a key) every front of its tenant."""
        searches = [(None, PUBLIC)]
        if caller.principal is not None:
            searches.insert(0, (caller.principal.tenant_scope(), ANY_FRONT))
        found: dict[str, dict[str, Any]] = {}
        for scope, access in searches:
            rows, _ = await caller.hub.store.read(
                lambda conn, scope=scope, access=access: agent_ops.query(
                    conn, scope, all_of=capabilities, any_of=[], status=None, service_tier=None, text=text,
                    limit=LIMIT, cursor=None, a2a_access=access,
                )
            )  # fmt: skip
            for row in rows:
                found.setdefault(row["agent_id"], self._entry(caller, row))
        return list(found.values())[:LIMIT]

    async def _describe(self, caller: Caller, ref: str) -> dict[str, Any] | None:
        scopes = ([caller.principal.tenant_scope()] if caller.principal is not None else []) + [None]
        for scope in scopes:
            try:
                row = await caller.hub.store.read(agent_ops.resolve, scope, ref)
            except AgoraError:
                continue
            if row["a2a"] is not None and (scope is not None or row["a2a"].get("access") == "public"):
                return {**self._entry(caller, row), "skills": row["a2a"].get("skills") or [], "status": row["status"]}
        return None

    @staticmethod
    def _entry(caller: Caller, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "agent_id": row["agent_id"], "name": row["agent_name"], "description": row["description"],
            "capabilities": row["capabilities"], "access": row["a2a"]["access"],
            "card_url": f"{caller.base}/a2a/agents/{row['agent_id']}/.well-known/agent-card.json",
        }  # fmt: skip

    # -- the directory keeps no tasks -----------------------------------------------------------------------------------

    async def _no_task(self, params: Any, _context: ServerCallContext) -> Any:
        raise TaskNotFoundError(f"no task '{getattr(params, 'id', '')}': the hub's directory answers with messages only")

    on_get_task = _no_task
    on_cancel_task = _no_task

    async def on_subscribe_to_task(self, params: pb.SubscribeToTaskRequest, context: ServerCallContext) -> AsyncGenerator[A2AEvent]:
        await self._no_task(params, context)
        yield pb.Message()  # never reached: makes this an async generator, as the SDK calls it

    async def on_list_tasks(self, params: pb.ListTasksRequest, context: ServerCallContext) -> pb.ListTasksResponse:
        return pb.ListTasksResponse(page_size=params.page_size or 50, total_size=0)

    async def _no_push(self, *_args: Any) -> Any:
        raise PushNotificationNotSupportedError("the hub's directory keeps no tasks, so it pushes nothing")

    on_create_task_push_notification_config = _no_push
    on_get_task_push_notification_config = _no_push
    on_list_task_push_notification_configs = _no_push
    on_delete_task_push_notification_config = _no_push

    async def on_get_extended_agent_card(self, params: pb.GetExtendedAgentCardRequest, context: ServerCallContext) -> pb.AgentCard:
        raise UnsupportedOperationError("the hub has no extended card")
