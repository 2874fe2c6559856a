"""Agent cards, A2A 1.0 and 0.3: one per agent with an A2A front, and the hub's own.

One card, three shapes. The 1.0 card carries only 1.0 fields and declares every interface, 1.0 and 0.3, on the same
URLs. The 0.3 card is the same card converted by the SDK's compatibility layer (``url``, ``preferredTransport``,
``additionalInterfaces``, 0.3 security schemes). The card both read is the 1.0 card with the 0.3 card's fields added
(the SDK's own ``agent_card_to_dict``, what its servers send).

Which one a request gets (``version_of``) follows what each client sends on its card request:

- a stock 0.3 client (``a2a-sdk`` 0.3.x, frameworks on it) asks for ``…/.well-known/agent-card.json`` with no
  ``A2A-Version``: 0.3 has no such header, and the 1.0 specification assumes 0.3 for a request without one;
- ``a2a-sdk`` 1.x's ``ClientFactory`` sends ``A2A-Version: 1.0`` on it; its bare card resolver sends what its
  caller sets, and parses cards with unknown fields ignored (the 0.3 fields are dropped or read as interfaces);
- the A2A TCK 1.0 asks with no header and checks the card against the 1.0 JSON schema, which allows no other
  fields; the TCK 0.3 asks with none, at the host's root.

So ``A2A-Version: 0.3`` (or the card's 0.2/0.3 location ``…/.well-known/agent.json``) gets the 0.3 card, a 1.x
version the 1.0 card, and no version the card both read — or, on a hub run with ``--a2a-strict-cards`` (for a
conformance run of the 1.0 TCK), the 1.0 card. A version may come as a query parameter too, as the specification
allows. Every card is sent with ``Cache-Control``, a weak ``ETag`` over its content, ``Vary: A2A-Version`` and
``Last-Modified``; a matching ``If-None-Match`` gets 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import orjson
from google.protobuf.json_format import MessageToDict
from starlette.requests import Request
from starlette.responses import Response

from a2a.compat.v0_3.conversions import to_compat_agent_card
from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.types import a2a_pb2 as pb
from a2a.utils.constants import VERSION_HEADER
from agora import __version__

CACHE_SECONDS = 60
SECURITY_SCHEME = "agora"


VERSIONS = ("1.0", "0.3")
BOTH = "0.3+1.0"  # the card a request naming no version gets: 1.0 and 0.3 clients read it
LEGACY_CARD = "/.well-known/agent.json"  # the card's location before 0.3.0, where 0.3-era clients look too


@dataclass(frozen=True)
class Grpc:
    """Where the gRPC binding listens (``--a2a-grpc-port``), and which agent answers calls that name none."""

    port: int
    default_agent: str | None

    def target(self, base: str) -> str:
        """host:port of the gRPC endpoint, on the host of the hub's URL."""
        host = urlsplit(base).hostname or "127.0.0.1"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


def _interfaces(url: str, grpc: Grpc | None, tenant: str, untenanted: bool) -> list[pb.AgentInterface]:
    """Both versions on each binding, 1.0 first (a client takes the first interface it can use). On gRPC the
    ``tenant`` names the agent; 0.3 has no tenant, so its gRPC interface is declared only where calls without one
    arrive (``untenanted``)."""
    interfaces = [
        pb.AgentInterface(url=url, protocol_binding=binding, protocol_version=version)
        for version in VERSIONS
        for binding in ("JSONRPC", "HTTP+JSON")
    ]
    if grpc is not None:
        target = grpc.target(url)
        interfaces.insert(2, pb.AgentInterface(url=target, protocol_binding="GRPC", protocol_version="1.0", tenant=tenant))
        if untenanted:
            interfaces.append(pb.AgentInterface(url=target, protocol_binding="GRPC", protocol_version="0.3"))
    return interfaces


def version_of(request: Request, strict: bool = False) -> str:
    """The card a request asks for: "0.3", "1.0", or with no version named ``BOTH`` (``strict``: "1.0")."""
    if request.url.path.endswith(LEGACY_CARD):
        return "0.3"
    named = (request.headers.get(VERSION_HEADER) or request.query_params.get(VERSION_HEADER) or "").strip()
    if named in ("0.3", "0.3.0"):
        return "0.3"
    return "1.0" if named or strict else BOTH


def as_json(card: pb.AgentCard, version: str) -> dict[str, Any]:
    if version == "1.0":
        return MessageToDict(card)
    if version == "0.3":
        legacy = to_compat_agent_card(card).model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        legacy = agent_card_to_dict(card)
    return {**legacy, "protocolVersion": "0.3.0"}  # the card field is the full version (an interface's, Major.Minor)


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


def agent_card(agent: dict[str, Any], base: str, grpc: Grpc | None) -> pb.AgentCard:
    """The A2A card of an agent whose A2A front is on (``agent["a2a"]``)."""
    front = agent["a2a"]
    card = pb.AgentCard(
        name=agent["agent_name"],
        description=agent["description"] or f"{agent['agent_name']}, an agent hosted on an Agora hub",
        version=str((agent["metadata"] or {}).get("version") or "1.0.0"),
        supported_interfaces=_interfaces(
            f"{base}/a2a/agents/{agent['agent_id']}", grpc, agent["agent_id"],
            untenanted=grpc is not None and grpc.default_agent in (agent["agent_id"], agent["agent_name"]),
        ),  # fmt: skip
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
    return card


def hub_card(base: str, skills: list[pb.AgentSkill], grpc: Grpc | None) -> pb.AgentCard:
    """Agora itself as an A2A agent whose skills find and describe the agents it hosts."""
    return pb.AgentCard(
        name="Agora",
        description="A hub where software agents find each other, talk and hand out work. Ask it to find agents by "
        "capability or to describe one; each public agent has its own card at /a2a/agents/{agent}.",
        version=__version__,
        supported_interfaces=_interfaces(f"{base}/a2a", grpc, "", untenanted=grpc is not None and not grpc.default_agent),
        provider=pb.AgentProvider(organization="Agora hub", url=base),
        capabilities=pb.AgentCapabilities(streaming=True, push_notifications=False, extended_agent_card=False),
        default_input_modes=["text/plain", "application/json"],
        default_output_modes=["application/json", "text/plain"],
        skills=skills,
    )


def card_response(request: Request, card: pb.AgentCard, modified: datetime | None, strict: bool = False) -> Response:
    """The card in the version the request asks for, with its caching headers."""
    body = orjson.dumps(as_json(card, version_of(request, strict)), option=orjson.OPT_SORT_KEYS)
    headers = {
        "ETag": f'W/"{hashlib.sha256(body).hexdigest()[:32]}"',
        "Cache-Control": f"public, max-age={CACHE_SECONDS}",
        "Vary": VERSION_HEADER,
    }
    if modified is not None:
        headers["Last-Modified"] = format_datetime(modified, usegmt=True)
    wanted = request.headers.get("if-none-match")
    if wanted and any(tag.strip().removeprefix("W/") == headers["ETag"].removeprefix("W/") for tag in wanted.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
