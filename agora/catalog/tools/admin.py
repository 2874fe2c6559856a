"""agora.admin.*"""

from agora.core.auth import Scope
from agora.core.services import admin, audit, keys
from agora_sdk.wire import admin as w

from ..tool import Tool

ADMIN_SCOPE = frozenset({Scope.admin.value})

TOOLS = [
    Tool(
        name="agora.admin.health",
        version="1.0.0",
        description="Hub health: each component (database, notifier, catalog, agents, system) healthy, degraded or critical.",
        input_model=w.HealthRequest,
        output_model=w.Health,
        handler=admin.health,
        read_only=True,
    ),
    Tool(
        name="agora.admin.override",
        version="1.0.0",
        description=(
            "Administrative override (authority 255 only): pause, resume or terminate an agent, or halt and "
            "resume the whole system ('system_wide'). Every override is written to the audit log."
        ),
        input_model=w.Override,
        output_model=w.OverrideResult,
        handler=admin.override,
        admin_only=True,
    ),
    Tool(
        name="agora.admin.audit",
        version="1.0.0",
        description="Read the audit log (overrides, key changes, OAuth grants), newest first.",
        input_model=w.AuditRequest,
        output_model=w.AuditLog,
        handler=audit.read,
        read_only=True,
        admin_only=True,
    ),
    Tool(
        name="agora.admin.keys.create",
        version="1.0.0",
        description="Create an API key (customer, agent or admin). The secret is returned once; only its hash is kept.",
        input_model=w.CreateKey,
        output_model=w.CreatedKey,
        handler=keys.create,
        scopes=ADMIN_SCOPE,
    ),
    Tool(
        name="agora.admin.keys.list",
        version="1.0.0",
        description="List API keys (never their secrets), oldest or newest first; by tenant and kind, revoked ones on request.",
        input_model=w.ListKeys,
        output_model=w.KeyList,
        handler=keys.list_keys,
        scopes=ADMIN_SCOPE,
        read_only=True,
    ),
    Tool(
        name="agora.admin.keys.revoke",
        version="1.0.0",
        description=(
            "Revoke an API key; it stops working at once on this replica, within seconds on others. Returns the key "
            "as it now stands."
        ),
        input_model=w.RevokeKey,
        output_model=w.RevokedKey,
        handler=keys.revoke,
        scopes=ADMIN_SCOPE,
    ),
]
