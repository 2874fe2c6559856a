"""Agents: registration, presence, lookup and search (tools ``agora.agents.*`` and ``agora.query.*``)."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, HttpUrl

from .a2a import A2AFront
from .common import (
    INT32_MAX,
    AgentStatus,
    Cursor,
    HeaderText,
    Input,
    JSONObject,
    Limit,
    Listing,
    Output,
    ServiceTier,
    UtcDatetime,
    acting_agent,
    id_pattern,
    mask_values,
)

AGENT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
RESERVED_AGENT_NAMES = frozenset({"broadcast", "system", "all"})


def _check_agent_name(name: str) -> str:
    if name.lower() in RESERVED_AGENT_NAMES:
        raise ValueError(f"'{name}' is reserved")
    if re.fullmatch(id_pattern("agent"), name):
        raise ValueError("names shaped like an agent id (agent_ and 16 or 24 hex digits) are reserved for ids")
    return name


AgentName = Annotated[
    str,
    Field(pattern=AGENT_NAME_PATTERN, description="Unique within the tenant: letters, digits, _ . - (max 128)."),
    AfterValidator(_check_agent_name),
]
Capability = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:/\-]{0,63}$")]
AgentRef = Annotated[str, Field(min_length=1, max_length=128, description="Agent id (agent_…) or unique name.")]


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


Capabilities = Annotated[list[Capability], Field(max_length=100), AfterValidator(_dedupe)]


class BuildType(StrEnum):
    python = "python"
    npm = "npm"
    custom = "custom"
    docker = "docker"


class BuildConfig(Input):
    type: BuildType
    build_command: str | None = Field(None, max_length=4096)
    start_command: str | None = Field(None, max_length=4096)
    env_vars: dict[str, str] = Field(default_factory=dict, description="Write-only: reads show the names only.")


class HostRequirements(Input):
    min_memory_mb: int | None = Field(None, ge=1, le=1_048_576)  # as a listing's
    min_cpu_cores: float | None = Field(None, gt=0)
    gpu_required: bool = False
    preferred_region: str | None = Field(None, max_length=64)
    co_location_required: bool = False
    co_location_with: list[str] = Field(default_factory=list, max_length=32)


class PricingModel(StrEnum):
    per_request = "per_request"
    per_minute = "per_minute"
    per_hour = "per_hour"
    hybrid = "hybrid"


class Pricing(Input):
    type: PricingModel
    price: Decimal = Field(ge=0, description="Per request, minute or hour; for hybrid, per request.")
    base_fee_per_hour: Decimal | None = Field(None, ge=0, description="Hybrid only: base fee per running hour.")
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")


class AgentManifest(Input):
    """How the agent is reached or run (seed 001/003 shapes); every part is optional."""

    endpoint: HttpUrl | None = None
    build_config: BuildConfig | None = None
    host_requirements: HostRequirements | None = None
    pricing: Pricing | None = None
    max_instances: int | None = Field(None, ge=1, le=10_000)  # as a listing's


class RegisterAgent(Input):
    positional_args = ("agent_name",)
    agent_name: AgentName
    capabilities: Capabilities = Field(default_factory=list)
    service_tier: ServiceTier = ServiceTier.basic
    description: str = Field("", max_length=4000)
    metadata: JSONObject = Field(default_factory=dict)
    manifest: AgentManifest | None = None
    a2a: A2AFront | None = Field(None, description="Reachable over A2A at /a2a/agents/{id or name}, with its own card.")
    a2a_card_url: str | None = Field(
        None,
        max_length=2048,
        pattern=r"^https?://",
        description="A remote A2A agent's card (or its base URL): the hub does this agent's tasks by calling it over A2A. "
        "Capabilities default to the card's skills.",
    )
    a2a_token: HeaderText | None = Field(None, description="Bearer token the hub sends the remote agent (never shown).")


def _manifest_shown(manifest: JSONObject | None) -> JSONObject | None:
    """The manifest as a read shows it: its build_config.env_vars are write-only (names only)."""
    build = (manifest or {}).get("build_config")
    if not isinstance(build, dict) or not isinstance(build.get("env_vars"), dict):
        return manifest
    return {**manifest, "build_config": {**build, "env_vars": mask_values(build["env_vars"])}}  # type: ignore[dict-item]


class Standing(Output):
    """What buyers think of the listing a marketplace agent runs, and what the hub measured of it."""

    listing_id: str
    rating: float = Field(description="Bayesian average of its reviews, 1 to 5 (agora_sdk/wire/reviews.py).")
    rating_count: int
    reputation: float = Field(description="0 to 100: the rating with the hub's own measurements (core/reputation.py).")


class Agent(Output):
    agent_id: str
    agent_name: str
    tenant_id: str
    capabilities: list[str]
    service_tier: ServiceTier
    status: AgentStatus
    description: str
    metadata: JSONObject
    manifest: Annotated[JSONObject | None, AfterValidator(_manifest_shown)] = Field(
        None, description="As registered, but build_config.env_vars read back as names only ('********')."
    )
    a2a: JSONObject | None = Field(None, description="The agent's A2A front; null: not reachable over A2A.")
    a2a_remote: JSONObject | None = Field(None, description="The remote A2A agent this one stands for: card URL, card, last fetch.")
    registered_at: UtcDatetime
    updated_at: UtcDatetime
    last_heartbeat: UtcDatetime | None = None
    load: int | None = Field(None, description="Tasks in progress (only when asked: include_load, include_counts).")
    inbox_depth: int | None = Field(
        None, description="Messages handed to it and not acked yet, up to 10,000 (only when asked: include_counts)."
    )
    listing: Standing | None = Field(
        None, description="A marketplace instance's agent: the listing it runs, with its rating and reputation (agora.query.agents)."
    )


class ServiceSummary(Output):
    name: str
    version: str
    status: str


class Registration(Output):
    agent_id: str
    agent_name: str
    status: Literal["registered", "updated"]
    agent_token: str | None = Field(
        None, description="Shown once. Absent when the agent re-registers itself with its own token."
    )
    agent: Agent
    available_services: list[ServiceSummary]


class AgentLookup(Input):
    positional_args = ("agent",)
    agent: AgentRef


class GetAgent(AgentLookup):
    include_counts: bool = Field(
        False, description="Also count its tasks in progress (load) and the messages waiting in its inbox (inbox_depth)."
    )


class Heartbeat(Input):
    agent: AgentRef | None = acting_agent("Defaults to the calling agent.")
    status: Literal["active", "busy", "error", "inactive"] = "active"
    note: str | None = Field(None, max_length=1000)


class HeartbeatAck(Output):
    agent_id: str
    status: AgentStatus
    last_heartbeat: UtcDatetime


class UpdateAgent(Input):
    agent: AgentRef | None = acting_agent("Defaults to the calling agent.")
    capabilities: Capabilities | None = None
    service_tier: ServiceTier | None = None
    description: str | None = Field(None, max_length=4000)
    metadata: JSONObject | None = None
    manifest: AgentManifest | None = None
    a2a: A2AFront | None = Field(None, description="Set the A2A front; null turns it off.")
    status: Literal["active", "busy", "error", "inactive"] | None = None


class Deregistered(Output):
    agent_id: str
    status: Literal["deregistered"] = "deregistered"
    revoked_keys: int


class AgentList(Listing):
    items_field = "agents"
    agents: list[Agent]
    count: int
    next_cursor: str | None = None


class AgentSort(StrEnum):
    id = "id"  # registration order, roughly (ids begin with the second they were made)
    name = "name"
    status = "status"  # then by name
    rating = "rating"  # best rated first (marketplace agents only), then the newest id
    reputation = "reputation"  # most reputable first (marketplace agents only), then the newest id


RATING = Field(None, ge=1, le=5, description="Only marketplace agents whose listing is rated at least this (its Bayesian rating).")
REPUTATION = Field(None, ge=0, le=100, description="Only marketplace agents whose listing has at least this reputation (0 to 100).")


class QueryAgents(Input):
    capabilities: list[Capability] = Field(default_factory=list, description="The agent must have all of these.")
    any_capabilities: list[Capability] = Field(default_factory=list, description="…and at least one of these.")
    status: AgentStatus | None = None
    service_tier: ServiceTier | None = None
    text: str | None = Field(None, min_length=1, max_length=200, description="Words to find in name/description/capabilities.")
    q: str | None = Field(
        None, min_length=1, max_length=500, description="What is wanted, as a person says it: agents ranked by relevance (as agora.marketplace.search ranks them)."
    )
    tenant: str | None = Field(
        None, min_length=1, max_length=128, description="Only this tenant's agents (id or name); the admin sees every tenant's otherwise."
    )
    min_rating: float | None = RATING
    min_reputation: float | None = REPUTATION
    sort: AgentSort = Field(AgentSort.id, description="id, name or status; rating or reputation: marketplace agents only, best first.")
    include_load: bool = Field(False, description="Also count each agent's tasks in progress (its load).")
    limit: Limit = 50
    cursor: Cursor | None = None


class ListAgents(Input):
    status: AgentStatus | None = None
    limit: Limit = 50
    cursor: Cursor | None = None


class MarketplaceQuery(Input):
    """Statistics of every agent the caller sees, or only of marketplace agents whose listing stands this well."""

    min_rating: float | None = RATING
    min_reputation: float | None = REPUTATION


class MarketplaceStats(Output):
    total_agents: int
    by_status: dict[str, int]
    by_capability: dict[str, int]
    by_tier: dict[str, int]
    by_rating: dict[str, int] = Field(
        default_factory=dict, description="Marketplace agents by their listing's rating in whole stars ('1' to '5', rounded down)."
    )


class RegisterCapability(Input):
    """The v4 ``register_agent_capability`` call, kept so v4 agents keep working."""

    agent_id: AgentName = Field(description="In v4 the agent's id was its name.")
    capability_type: Capability
    proficiency: int = Field(0, ge=0, le=100)
    max_tasks: int = Field(1, ge=1, le=INT32_MAX)
