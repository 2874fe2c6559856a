"""Operating the hub: health, overrides, audit and API keys (tools ``agora.admin.*``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from .common import Cursor, Input, JSONObject, Limit, Listing, Output, UtcDatetime, id_pattern


class HealthLevel(StrEnum):
    healthy = "healthy"
    degraded = "degraded"
    critical = "critical"


class HealthRequest(Input):
    component: Literal["database", "notifier", "catalog", "agents", "system"] | None = None


class ComponentHealth(Output):
    status: HealthLevel
    detail: str = ""
    data: JSONObject = Field(default_factory=dict)


class Health(Output):
    status: HealthLevel
    components: dict[str, ComponentHealth]
    timestamp: UtcDatetime
    version: str


class OverrideAction(StrEnum):
    pause = "pause"
    resume = "resume"
    terminate = "terminate"
    emergency_halt = "emergency_halt"


class Override(Input):
    target_id: str = Field(min_length=1, max_length=128, description="An agent id or name, or 'system_wide'.")
    action: OverrideAction
    reason: str = Field(min_length=1, max_length=2000)
    authority: int = Field(255, ge=0, le=255, description="The authority level invoked (255 = supreme).")
    priority: int | None = Field(None, ge=0, le=255, description="Seed 000's name for authority.")


class OverrideResult(Output):
    override_id: str
    target_id: str
    action: OverrideAction
    status: Literal["executed"]
    executed_at: UtcDatetime
    system_halted: bool


class AuditRequest(Input):
    action: str | None = Field(None, max_length=64)
    target_id: str | None = Field(None, max_length=128)
    limit: Limit = 100
    cursor: Cursor | None = None


class AuditEntry(Output):
    event_id: str
    at: UtcDatetime
    actor: str
    actor_kind: str
    action: str
    target_id: str
    tenant_id: str | None
    reason: str
    authority: int
    details: JSONObject


class AuditLog(Listing):
    items_field = "entries"

    entries: list[AuditEntry]
    count: int
    next_cursor: str | None = None


class Role(StrEnum):
    """A person's (or a key's) role in a tenant: viewer reads; billing also manages budgets and credits; operator also
    intervenes (sends, task and workflow interventions, instance control); developer also registers agents,
    publishes listings and manages MCP servers; admin does everything in the tenant."""

    viewer = "viewer"
    billing = "billing"
    operator = "operator"
    developer = "developer"
    admin = "admin"


class KeyKind(StrEnum):
    admin = "admin"
    customer = "customer"
    agent = "agent"


class CreateKey(Input):
    kind: KeyKind = KeyKind.customer
    name: str = Field("", max_length=200, description="A label to recognise the key by.")
    tenant: str | None = Field(
        None, max_length=128, description="Tenant id or name; a customer key for a new name (or none) creates the tenant."
    )
    agent: str | None = Field(None, max_length=128, description="For kind=agent: the agent id or name it acts as.")
    scopes: list[str] | None = Field(None, description="Default: every non-admin scope.")
    role: Role | None = Field(
        None,
        description="For kind=customer: limit the key to a role of its tenant (viewer, billing, operator, developer, "
        "admin); it then carries that role's scopes (give either role or scopes).",
    )


class KeyInfo(Output):
    key_id: str
    kind: KeyKind
    name: str
    tenant_id: str | None
    agent_id: str | None
    scopes: list[str]
    prefix: str
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None
    role: Role | None = Field(None, description="The role the key is limited to, if any.")


class CreatedKey(Output):
    key: str = Field(description="The secret. Shown once; only its hash is stored.")
    info: KeyInfo


class ListKeys(Input):
    tenant: str | None = Field(None, max_length=128)
    kind: KeyKind | None = None
    include_revoked: bool = False
    newest_first: bool = Field(False, description="Newest keys first (the default is oldest first).")
    limit: Limit = 100
    cursor: Cursor | None = None


class KeyList(Listing):
    items_field = "keys"

    keys: list[KeyInfo]
    count: int
    next_cursor: str | None = None


class RevokeKey(Input):
    positional_args = ("key_id",)

    key_id: str = Field(pattern=id_pattern("key"))


class RevokedKey(Output):
    key_id: str
    revoked_at: UtcDatetime
    info: KeyInfo
