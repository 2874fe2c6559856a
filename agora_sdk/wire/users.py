"""People: users (a local account or single sign-on) and their memberships, a role in a tenant each."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .admin import Role
from .common import Cursor, Input, Limit, Listing, Output, UtcDatetime

Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$", description="The person's email address.")]
UserRef = Annotated[str, Field(min_length=1, max_length=254, description="The user's id (usr_…) or email.")]
TenantRef = Annotated[str | None, Field(max_length=128, description="Tenant id or name (a tenant admin's own tenant when left out).")]


class Membership(Output):
    tenant_id: str
    tenant_name: str
    role: Role


class User(Output):
    user_id: str
    email: str
    name: str
    single_sign_on: str | None = Field(description="The identity provider (issuer) the person signs in with, if any.")
    has_password: bool = Field(description="Whether the person has set a password (a local account).")
    two_factor: bool = Field(description="Whether sign-in asks for a TOTP code.")
    hub_admin: bool = Field(description="Whether the person administers the whole hub.")
    memberships: list[Membership] = Field(description="Their roles, one per tenant (only the caller's tenant for a tenant admin).")
    created_at: UtcDatetime


class CreateUser(Input):
    positional_args = ("email",)

    email: Email
    tenant: TenantRef = Field(None, description="Tenant id or name (a tenant admin's own tenant when left out; for the hub administrator a new name makes the tenant).")
    role: Role | None = Field(None, description="Their role in the tenant (give it, or hub_admin).")
    name: str = Field("", max_length=200, description="How the console shows them.")
    hub_admin: bool = Field(False, description="Make them an administrator of the whole hub (the hub administrator only).")
    link_hours: int = Field(72, ge=1, le=720, description="Hours the one-time sign-up link stays valid.")


class CreatedUser(Output):
    user: User
    created: bool = Field(description="False when the email was a user already (the membership was set).")
    tenant_id: str | None = Field(description="The tenant they were given a role in.")
    signup_path: str | None = Field(
        None,
        description="The one-time sign-up link (path on the hub; shown once): the person opens it and sets a password. "
        "None when they have one already, or sign in through the identity provider.",
    )
    signup_expires_at: UtcDatetime | None = None


class ListUsers(Input):
    tenant: TenantRef = None
    limit: Limit = 100
    cursor: Cursor | None = None


class UserList(Listing):
    items_field = "users"

    users: list[User]
    next_cursor: str | None = None


class UserRefInput(Input):
    positional_args = ("user",)

    user: UserRef


class SetMembership(Input):
    positional_args = ("user", "role")

    user: UserRef
    role: Role
    tenant: TenantRef = None


class RemoveMembership(Input):
    positional_args = ("user",)

    user: UserRef
    tenant: TenantRef = None


class MembershipChange(Output):
    user_id: str
    tenant_id: str
    role: Role | None = Field(description="The role now held; None once the membership is removed.")
    previous_role: Role | None
    sessions_ended: int = Field(0, description="Signed-in sessions ended by the change (a removal).")


class RemovedUser(Output):
    user_id: str
    removed_at: UtcDatetime
    sessions_ended: int


class Me(Output):
    """Who is calling: the principal's kind, tenant and rights, and the person behind it, if any."""

    kind: str = Field(description="admin, customer (a tenant) or agent.")
    label: str = Field(description="How the audit log names the caller: user:<id>, an agent id, or <kind>:<key id>.")
    tenant_id: str | None = Field(description="The tenant it acts in (None: the hub administrator, every tenant).")
    role: Role | None = Field(description="The role its rights come from, if limited to one.")
    scopes: list[str]
    user: User | None = Field(description="The signed-in person, with all their memberships.")


class NewSecondFactor(Output):
    """A TOTP secret to enrol in an authenticator app; nothing is stored until a code from it is confirmed."""

    secret: str = Field(description="Base32, for entering by hand.")
    otpauth_uri: str = Field(description="The otpauth:// URI an authenticator app reads (as a QR code or pasted).")


class SetSecondFactor(Input):
    secret: str | None = Field(
        None, min_length=16, max_length=64, pattern=r"^[A-Z2-7]+=*$",
        description="The secret from agora.users.new_second_factor to turn the second factor on; none to turn it off.",
    )
    code: str | None = Field(
        None, min_length=6, max_length=32, description="A code from the app (the new secret's, or the current one's to turn it off)."
    )
    user: UserRef | None = Field(
        None,
        description="A tenant's or the hub's administrator turning a person's second factor off (a lost phone): no code needed.",
    )


class SecondFactorSet(Output):
    two_factor: bool
    recovery_codes: list[str] = Field(
        default_factory=list, description="One-time codes for when the app is lost: shown once, each works once."
    )
