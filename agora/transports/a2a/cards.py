"""Agent cards (A2A 1.0): one per agent with an A2A front, and the hub's own.

Cards carry only 1.0 fields (a card with 0.3's ``url``/``preferredTransport`` fails the 1.0 card schema); 0.3 callers
are served on the same URLs all the same. Every card is sent with ``Cache-Control``, a weak ``ETag`` over its content
and ``Last-Modified``; a matching ``If-None-Match`` gets 304.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import orjson
from google.protobuf.json_format import MessageToDict
from starlette.requests import Request
from starlette.responses import Response

from a2a.types import a2a_pb2 as pb
from agora import __version__

CACHE_SECONDS = 60
SECURITY_SCHEME = "agora"


def base_url(request: Request, public_url: str | None) -> str:
    return (public_url or str(request.base_url)).rstrip("/")


def _interfaces(url: str) -> list[pb.AgentInterface]:
    return [pb.AgentInterface(url=url, protocol_binding=binding, protocol_version="1.0") for binding in ("JSONRPC", "HTTP+JSON")]


def _skills(agent: dict[str, Any], front: dict[str, Any]) -> list[pb.AgentSkill]:
    declared = front.get("skills") or []
    if declared:
        return [
            pb.AgentSkill(
                id=s["id"], name=s["name"], description=s.get("description") or s["name"], tags=s.get("tags") or [s["id"]],
                examples=s.get("examples") or [], input_modes=s.get("input_modes") or [], output_modes=s.get("output_modes") or [],
            )  # fmt: skip
            for s in declared
        ]
    capabilities = agent["capabilities"] or ["general"]
    return [pb.AgentSkill(id=c, name=c, description=f"{agent['agent_name']}: {c}", tags=[c]) for c in capabilities]


def agent_card(agent: dict[str, Any], base: str) -> dict[str, Any]:
    """The A2A card of an agent whose A2A front is on (``agent["a2a"]``), as JSON."""
    front = agent["a2a"]
    card = pb.AgentCard(
        name=agent["agent_name"],
        description=agent["description"] or f"{agent['agent_name']}, an agent hosted on an Agora hub",
        version=str((agent["metadata"] or {}).get("version") or "1.0.0"),
        supported_interfaces=_interfaces(f"{base}/a2a/agents/{agent['agent_id']}"),
        provider=pb.AgentProvider(organization="Agora hub", url=base),
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=True, extended_agent_card=False),
        default_input_modes=front.get("input_modes") or ["text/plain"],
        default_output_modes=front.get("output_modes") or ["text/plain"],
        skills=_skills(agent, front),
    )
    if front.get("access") != "public":
        scheme = pb.HTTPAuthSecurityScheme(scheme="Bearer", description="An Agora API key or agent token of the agent's tenant")
        card.security_schemes[SECURITY_SCHEME].http_auth_security_scheme.CopyFrom(scheme)
        card.security_requirements.add().schemes[SECURITY_SCHEME].CopyFrom(pb.StringList())
    return MessageToDict(card)


def hub_card(base: str, skills: list[pb.AgentSkill]) -> dict[str, Any]:
    """Agora itself as an A2A agent whose skills find and describe the agents it hosts."""
    card = pb.AgentCard(
        name="Agora",
        description="A hub where software agents find each other, talk and hand out work. Ask it to find agents by "
        "capability or to describe one; each public agent has its own card at /a2a/agents/{agent}.",
        version=__version__,
        supported_interfaces=_interfaces(f"{base}/a2a"),
        provider=pb.AgentProvider(organization="Agora hub", url=base),
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=False, extended_agent_card=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["application/json", "text/plain"],
        skills=skills,
    )
    return MessageToDict(card)


def card_response(request: Request, card: dict[str, Any], modified: datetime | None) -> Response:
    body = orjson.dumps(card, option=orjson.OPT_SORT_KEYS)
    headers = {"ETag": f'W/"{hashlib.sha256(body).hexdigest()[:32]}"', "Cache-Control": f"public, max-age={CACHE_SECONDS}"}
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified, usegmt=True)
    wanted = request.headers.get("if-none-match")
    if wanted and any(tag.strip().removeprefix("W/") == headers["ETag"].removeprefix("W/") for tag in wanted.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
