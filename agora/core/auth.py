"""Principals, roles and API keys.

Three kinds of principal: the admin (authority 255, sees every tenant), a customer (a tenant, with
scopes) and an agent (bound to one agent id; it acts only as itself). Keys are random, shown once,
and stored as SHA-256 hashes: they carry 256 bits of entropy, so a slow password hash adds nothing.

A role (viewer, operator, developer, billing, admin of a tenant) is a named set of scopes: a key limited to a role
carries that set, so every door checks the one thing it always checks, the tool's scopes.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum

from agora_sdk.errors import PermissionDenied
from agora_sdk.wire.admin import Role

KEY_PREFIX = "agora_sk_"
ACCESS_TOKEN_PREFIX = "agora_oat_"  # an OAuth access token (core/oauth.py): it stands for a key


class Scope(StrEnum):
    agents_read = "agents:read"
    agents_write = "agents:write"
    messaging_send = "messaging:send"
    messaging_read = "messaging:read"
    messaging_receive = "messaging:receive"  # take deliveries from an inbox (receive, ack, subscribe): they change it
    tasks_read = "tasks:read"
    tasks_write = "tasks:write"
    workflows_read = "workflows:read"
    workflows_write = "workflows:write"
    schedules_read = "schedules:read"
    schedules_write = "schedules:write"  # make and change schedules (each tick's action needs its own scope too)
    mcp_servers_read = "mcp_servers:read"
    mcp_servers_write = "mcp_servers:write"
    tools_call = "tools:call"  # tools imported from external MCP servers (ext.*)
    marketplace_read = "marketplace:read"
    marketplace_write = "marketplace:write"  # publish and unlist listings
    instances_write = "instances:write"  # create and deploy marketplace instances (they are billed)
    instances_control = "instances:control"  # run requests on instances, pause, resume and terminate them
    billing_read = "billing:read"  # invoices and usage
    billing_write = "billing:write"  # budgets, credits and payment details
    hosting = "hosting"  # what a hosting node's agent does: report on its instances, start them
    usage_report = "usage:report"  # what a marketplace instance's own agent does: report the units it used
    admin = "admin"


ALL_SCOPES = frozenset(s.value for s in Scope)
DEFAULT_SCOPES = frozenset(ALL_SCOPES - {Scope.admin.value})


_READ = frozenset({
    Scope.agents_read, Scope.messaging_read, Scope.tasks_read, Scope.workflows_read, Scope.schedules_read,
    Scope.mcp_servers_read, Scope.marketplace_read, Scope.billing_read,
})  # fmt: skip
_OPERATE = _READ | {
    Scope.messaging_send, Scope.messaging_receive, Scope.tasks_write, Scope.workflows_write, Scope.schedules_write,
    Scope.instances_control, Scope.tools_call,
}  # fmt: skip
_DEVELOP = _OPERATE | {Scope.agents_write, Scope.marketplace_write, Scope.instances_write, Scope.mcp_servers_write}
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.viewer: frozenset(s.value for s in _READ),
    Role.billing: frozenset(s.value for s in _READ | {Scope.billing_write}),
    Role.operator: frozenset(s.value for s in _OPERATE),
    Role.developer: frozenset(s.value for s in _DEVELOP),
    Role.admin: frozenset(DEFAULT_SCOPES - {Scope.hosting.value, Scope.usage_report.value} | {Scope.admin.value}),
}


def roles_allowing(needed: frozenset[str]) -> list[str]:
    """The roles whose scopes include ``needed``, least first."""
    return [role.value for role, scopes in ROLE_SCOPES.items() if needed <= scopes]


class PrincipalKind(StrEnum):
    admin = "admin"
    customer = "customer"
    agent = "agent"


AUTHORITY = {PrincipalKind.admin: 255, PrincipalKind.customer: 100, PrincipalKind.agent: 50}


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    key_id: str
    tenant_id: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    agent_id: str | None = None
    agent_status: str | None = None
    key_hash: str | None = field(default=None, repr=False)  # of the key it authenticated with (None: made by the hub)
    role: str | None = None  # the role its key is limited to, if any
    user_id: str | None = None  # the person it acts for (a signed-in user), if any
    user_email: str | None = None

    @property
    def authority(self) -> int:
        return AUTHORITY[self.kind]

    @property
    def is_admin(self) -> bool:
        return self.kind is PrincipalKind.admin

    @property
    def limit_key(self) -> str:
        """Whose rate limits a call counts against: an agent's own, a person's (all their sessions and tokens), else
        the key's."""
        return self.agent_id or self.user_id or self.key_id

    @property
    def label(self) -> str:
        """How logs and the audit trail name the caller: its agent, its person, or its key."""
        if self.agent_id:
            return self.agent_id
        return f"user:{self.user_id}" if self.user_id else f"{self.kind.value}:{self.key_id}"

    def tenant_scope(self) -> str | None:
        """The tenant whose objects this principal may see, or None for every tenant (admin)."""
        return None if self.is_admin else self.tenant_id

    def require_scopes(self, needed: frozenset[str], tool_name: str) -> None:
        if self.is_admin:
            return
        missing = sorted(needed - self.scopes)
        if missing:
            roles = roles_allowing(needed)
            holder = f"the {self.role} role" if self.role else "this key"
            allow = f"; the role(s) that allow it: {', '.join(roles)}" if roles else ""
            raise PermissionDenied(
                f"{tool_name} needs scope(s) {', '.join(missing)}, which {holder} does not have{allow}",
                details={"missing_scopes": missing, "role": self.role, "roles_allowing": roles},
            )


def is_admin_label(label: str) -> bool:
    """Whether a recorded ``Principal.label`` (a row's ``created_by``, an A2A task's caller) names an admin key."""
    return label.startswith(f"{PrincipalKind.admin.value}:")


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + 6]
