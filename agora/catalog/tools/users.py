"""agora.users.* and agora.memberships.*: people and their roles in tenants."""

from datetime import date
from typing import Any

from agora.core.auth import Scope
from agora.core.services import users
from agora_sdk.wire import users as w
from agora_sdk.wire.common import Empty

from ..tool import Tool

TENANT_ADMIN = frozenset({Scope.admin.value})  # a tenant's admin (its own members), or the hub administrator
ADDED = date(2026, 11, 28)
# Managing people is not new work: during an emergency halt a compromised account must still go.
MANAGING: dict[str, Any] = {"new_work": False, "last_updated": ADDED}

TOOLS = [
    Tool(
        name="agora.users.me",
        version="1.0.0",
        description="Who is calling: the key's or person's kind, tenant, role and scopes, and the person's tenants.",
        input_model=Empty,
        output_model=w.Me,
        handler=users.me,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.users.new_second_factor",
        version="1.0.0",
        description="A new TOTP secret for the signed-in person's authenticator app (nothing changes until it is confirmed).",
        input_model=Empty,
        output_model=w.NewSecondFactor,
        handler=users.new_factor,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.users.set_second_factor",
        version="1.0.0",
        description=(
            "Turn the signed-in person's second factor on (the new secret and a code from it; answers ten one-time "
            "recovery codes, shown once) or off (no secret, the current code)."
        ),
        input_model=w.SetSecondFactor,
        output_model=w.SecondFactorSet,
        handler=users.set_factor,
        new_work=False,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.users.create",
        version="1.0.0",
        description=(
            "Add a person to a tenant with a role (viewer, billing, operator, developer, admin), making their account if "
            "the email is new. Answers a one-time sign-up link (shown once; it expires) when they have no password yet."
        ),
        input_model=w.CreateUser,
        output_model=w.CreatedUser,
        handler=users.create,
        scopes=TENANT_ADMIN,
        **MANAGING,
    ),
    Tool(
        name="agora.users.list",
        version="1.0.0",
        description="List people with their roles: a tenant's members, or (the hub administrator) everyone.",
        input_model=w.ListUsers,
        output_model=w.UserList,
        handler=users.list_users,
        scopes=TENANT_ADMIN,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.users.remove",
        version="1.0.0",
        description=(
            "Remove a person from the hub: every membership, signed-in session and unused sign-up link ends at once, "
            "on every replica. Their audit trail stays."
        ),
        input_model=w.UserRefInput,
        output_model=w.RemovedUser,
        handler=users.remove,
        admin_only=True,
        **MANAGING,
    ),
    Tool(
        name="agora.memberships.set",
        version="1.0.0",
        description="Change a member's role in a tenant; their signed-in sessions there carry the new role from their next call.",
        input_model=w.SetMembership,
        output_model=w.MembershipChange,
        handler=users.set_membership,
        scopes=TENANT_ADMIN,
        **MANAGING,
    ),
    Tool(
        name="agora.memberships.remove",
        version="1.0.0",
        description="Take a person out of a tenant: their signed-in sessions there end at once, on every replica.",
        input_model=w.RemoveMembership,
        output_model=w.MembershipChange,
        handler=users.remove_membership,
        scopes=TENANT_ADMIN,
        **MANAGING,
    ),
]
