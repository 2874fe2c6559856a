"""People and their memberships: the hub administrator manages everyone; a tenant's admin (the ``admin`` scope of a
customer key or session) manages its own tenant's members. A user of another tenant is the 404 of one that does not
exist. A change that lessens someone's rights takes effect at once: their live session keys are changed or revoked,
and every replica's authenticator drops them (``Authenticator.forget``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from agora.core.accounts import link_token, new_second_factor, provisioning_uri, recovery_codes, totp_ok
from agora.core.auth import ROLE_SCOPES
from agora.core.context import CallContext
from agora.store import tenancy
from agora.store.ops import audit as audit_ops
from agora.store.ops import keys as key_ops
from agora.store.ops import users as user_ops
from agora_sdk.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from agora_sdk.wire.common import Empty
from agora_sdk.wire.users import (
    CreatedUser,
    CreateUser,
    ListUsers,
    Me,
    MembershipChange,
    NewSecondFactor,
    RemovedUser,
    SecondFactorSet,
    SetSecondFactor,
    RemoveMembership,
    SetMembership,
    User,
    UserList,
    UserRefInput,
)

from .acting import tenant_in_scope
from .audit import audit_entry

SIGNUP_PATH = "/ui/sign-up?token="


def user_model(row: dict[str, Any], held: list[dict[str, Any]]) -> User:
    return User(
        user_id=row["user_id"], email=row["email"], name=row["name"], single_sign_on=row["issuer"],
        has_password=row["password_hash"] is not None, two_factor=row["totp_secret"] is not None,
        hub_admin=row["hub_admin"], memberships=held, created_at=row["created_at"],
    )  # fmt: skip


async def _tenant(ctx: CallContext, ref: str | None) -> str:
    """The tenant a membership change is about: the one named, or the caller's own; the hub administrator names one."""
    tenant = await tenant_in_scope(ctx, ref)
    if tenant is None:
        raise InvalidArgument("name the tenant ('tenant')", details={"field": "tenant"})
    return tenant


def _create_op(conn: Connection, ctx: CallContext, req: CreateUser, tenant_id: str | None, link: tuple[str, str], now: datetime) -> dict[str, Any]:
    by = ctx.principal.label
    if tenant_id is None and req.tenant and req.role is not None:  # the hub administrator: a new name makes the tenant
        tenant_id = (key_ops.resolve_tenant(conn, req.tenant) or key_ops.create_tenant(conn, req.tenant, now))["tenant_id"]
    user, created = user_ops.create(conn, req.email, req.name, by, now, hub_admin=req.hub_admin)
    previous = None
    if tenant_id is not None and req.role is not None:
        _, previous = user_ops.set_membership(conn, user["user_id"], tenant_id, req.role.value, by, now)
    if not ctx.principal.is_admin:  # a tenant's admin learns whether the person is new to its tenant, not to the hub
        created = previous is None
    expires_at = None
    if user["password_hash"] is None and user["issuer"] is None:
        expires_at = now + timedelta(hours=req.link_hours)
        user_ops.insert_link(conn, link[1], user["user_id"], expires_at, by, now)
    details = {"email": user["email"], "role": req.role.value if req.role else None, "previous_role": previous, "hub_admin": req.hub_admin}
    audit_ops.append(conn, audit_entry(ctx, "user_added", user["user_id"], tenant_id, "", now, details))
    held = user_ops.memberships_of(conn, [user["user_id"]], ctx.principal.tenant_scope())[user["user_id"]]
    return {"user": user, "created": created, "held": held, "expires_at": expires_at, "tenant_id": tenant_id}


async def create(ctx: CallContext, req: CreateUser) -> CreatedUser:
    p = ctx.principal
    if req.hub_admin and not p.is_admin:
        raise PermissionDenied("only the hub administrator makes hub administrators", details={"field": "hub_admin"})
    if req.role is None and not req.hub_admin:
        raise InvalidArgument("give the person a role in a tenant ('role')", details={"field": "role"})
    if p.is_admin and req.role is not None and not req.tenant:
        raise InvalidArgument("name the tenant ('tenant'): a new name makes it", details={"field": "tenant"})
    tenant_id = await _tenant(ctx, req.tenant) if req.role is not None and not p.is_admin else None
    link = link_token()
    done = await ctx.store.write(_create_op, ctx, req, tenant_id, link, ctx.clock.now())
    return CreatedUser(
        user=user_model(done["user"], done["held"]), created=done["created"], tenant_id=done["tenant_id"],
        signup_path=SIGNUP_PATH + link[0] if done["expires_at"] else None, signup_expires_at=done["expires_at"],
    )  # fmt: skip


async def list_users(ctx: CallContext, req: ListUsers) -> UserList:
    scope = await tenant_in_scope(ctx, req.tenant)
    rows, next_cursor = await ctx.store.read(user_ops.list_users, scope, req.limit, req.cursor)
    return UserList(users=[user_model(r, r["memberships"]) for r in rows], next_cursor=next_cursor)


def _set_op(conn: Connection, ctx: CallContext, req: SetMembership, tenant_id: str, now: datetime) -> dict[str, Any]:
    # A tenant's admin changes its members' roles (a new member comes through agora.users.create); the hub's, anyone's.
    user = user_ops.resolve(conn, req.user, None if ctx.principal.is_admin else tenant_id)
    _, previous = user_ops.set_membership(conn, user["user_id"], tenant_id, req.role.value, ctx.principal.label, now)
    hashes = user_ops.set_session_keys_role(conn, user["user_id"], tenant_id, req.role.value, sorted(ROLE_SCOPES[req.role]))
    details = {"email": user["email"], "role": req.role.value, "previous_role": previous}
    audit_ops.append(conn, audit_entry(ctx, "membership_set", user["user_id"], tenant_id, "", now, details))
    return {"user_id": user["user_id"], "previous": previous, "hashes": hashes}


async def set_membership(ctx: CallContext, req: SetMembership) -> MembershipChange:
    """Give a person a role in a tenant (adding them to it, or changing their role); their live sessions there carry
    the new role from their next call on."""
    tenant_id = await _tenant(ctx, req.tenant)
    done = await ctx.store.write(_set_op, ctx, req, tenant_id, ctx.clock.now())
    ctx.hub.auth.forget(done["hashes"], [done["user_id"]])
    return MembershipChange(user_id=done["user_id"], tenant_id=tenant_id, role=req.role, previous_role=done["previous"])


def _remove_membership_op(conn: Connection, ctx: CallContext, req: RemoveMembership, tenant_id: str, now: datetime) -> dict[str, Any]:
    user = user_ops.resolve(conn, req.user, tenant_id)
    held = user_ops.memberships_of(conn, [user["user_id"]], tenant_id)[user["user_id"]]
    if not user_ops.remove_membership(conn, user["user_id"], tenant_id):
        raise NotFound(f"no user '{req.user}'", details={"field": "user", "user": req.user})
    hashes = key_ops.revoke_user_keys(conn, user["user_id"], tenant_id, now)
    audit_ops.append(conn, audit_entry(ctx, "membership_removed", user["user_id"], tenant_id, "", now, {"email": user["email"], "sessions_ended": len(hashes)}))
    return {"user_id": user["user_id"], "previous": held[0]["role"] if held else None, "hashes": hashes}


async def remove_membership(ctx: CallContext, req: RemoveMembership) -> MembershipChange:
    """Take a person out of a tenant: their sessions there end at once, on every replica."""
    tenant_id = await _tenant(ctx, req.tenant)
    done = await ctx.store.write(_remove_membership_op, ctx, req, tenant_id, ctx.clock.now())
    ctx.hub.auth.forget(done["hashes"], [done["user_id"]])
    return MembershipChange(user_id=done["user_id"], tenant_id=tenant_id, role=None, previous_role=done["previous"], sessions_ended=len(done["hashes"]))


def _remove_op(conn: Connection, ctx: CallContext, ref: str, now: datetime) -> dict[str, Any]:
    user = user_ops.resolve(conn, ref, None)
    user_ops.remove(conn, user["user_id"], now)
    hashes = key_ops.revoke_user_keys(conn, user["user_id"], None, now)
    audit_ops.append(conn, audit_entry(ctx, "user_removed", user["user_id"], None, "", now, {"email": user["email"], "sessions_ended": len(hashes)}))
    return {"user_id": user["user_id"], "hashes": hashes}


async def remove(ctx: CallContext, req: UserRefInput) -> RemovedUser:
    """The person leaves the hub: every membership, session and unused sign-up link, at once on every replica."""
    now = ctx.clock.now()
    done = await ctx.store.write(_remove_op, ctx, req.user, now)
    ctx.hub.auth.forget(done["hashes"], [done["user_id"]])
    return RemovedUser(user_id=done["user_id"], removed_at=now, sessions_ended=len(done["hashes"]))


async def me(ctx: CallContext, _req: Empty) -> Me:
    p = ctx.principal
    user = None
    if p.user_id is not None:
        row = await ctx.store.read(user_ops.get, p.user_id)
        with tenancy.hub_wide():  # the person's own memberships, in every tenant
            held = await ctx.store.read(user_ops.memberships_of, [p.user_id])
        user = user_model(row, held[p.user_id]) if row is not None else None
    return Me(kind=p.kind.value, label=p.label, tenant_id=p.tenant_scope(), role=p.role, scopes=sorted(p.scopes), user=user)


async def new_factor(ctx: CallContext, _req: Empty) -> NewSecondFactor:
    """A fresh secret (nothing is stored): only the code it yields, sent back with it, turns the factor on."""
    secret = new_second_factor()
    return NewSecondFactor(secret=secret, otpauth_uri=provisioning_uri(secret, ctx.principal.user_email or ctx.principal.label, "Agora"))


def _factor_op(conn: Connection, ctx: CallContext, req: SetSecondFactor, hashes: list[str] | None, now: datetime) -> None:
    p = ctx.principal
    if req.user is not None:  # an administrator's reset
        user = user_ops.resolve(conn, req.user, p.tenant_scope())
    elif p.user_id is None:
        raise FailedPrecondition("a second factor belongs to a person: sign in as one, or name the 'user' to reset", details={"reason": "not_a_person"})
    else:
        user = user_ops.get(conn, p.user_id)
        if user is None:
            raise NotFound("no such user", details={"field": "user"})
        if req.secret is None and (user["totp_secret"] is None or not totp_ok(user["totp_secret"], req.code or "")):
            raise InvalidArgument("that code is not the current one of your authenticator app", details={"field": "code"})
    user_ops.set_second_factor(conn, user["user_id"], req.secret, hashes)
    action = "second_factor_on" if req.secret else "second_factor_off"
    audit_ops.append(conn, audit_entry(ctx, action, user["user_id"], p.tenant_scope(), "", now, {"email": user["email"]}))


async def set_factor(ctx: CallContext, req: SetSecondFactor) -> SecondFactorSet:
    """Turn the caller's TOTP second factor on (a code from the new secret proves the app has it) or off; or, for an
    administrator naming a ``user``, turn that person's off."""
    p = ctx.principal
    if req.user is not None:
        if not (p.is_admin or "admin" in p.scopes):
            raise PermissionDenied("only an administrator resets another person's second factor", details={"field": "user"})
        if req.secret is not None:
            raise InvalidArgument("only the person turns their second factor on", details={"field": "secret"})
    elif req.secret is not None and not totp_ok(req.secret, req.code or ""):
        raise InvalidArgument("that code does not match the new secret: check the app's clock and try the next code", details={"field": "code"})
    codes, hashes = recovery_codes() if req.secret else ([], None)
    await ctx.store.write(_factor_op, ctx, req, hashes, ctx.clock.now())
    return SecondFactorSet(two_factor=req.secret is not None, recovery_codes=codes)
