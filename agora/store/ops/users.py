"""People (``users``), their memberships (a role in a tenant) and one-time sign-up links."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from agora.core.ids import new_id
from agora_sdk.errors import Conflict, NotFound, PermissionDenied

from ..base import point_read
from ..schema import api_keys, memberships, signup_links, sso_requests, tenants, users
from .keys import create_tenant, resolve_tenant
from .pagination import decode_cursor, page

SSO_REQUEST_LIFETIME = timedelta(minutes=10)  # a person has this long at the identity provider's login page


@point_read
def by_email(conn: Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.email == email.lower())).mappings().first()
    return dict(row) if row else None


@point_read
def get(conn: Connection, user_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(users).where(users.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def resolve(conn: Connection, ref: str, tenant_scope: str | None) -> dict[str, Any]:
    """A present user by id or email; within ``tenant_scope`` (not None) only a member of that tenant. 404 otherwise,
    the same whether the person is elsewhere or nowhere."""
    stmt = select(users).where((users.c.user_id == ref) | (users.c.email == ref.lower()), users.c.removed_at.is_(None))
    if tenant_scope is not None:
        stmt = stmt.where(
            select(memberships.c.user_id)
            .where(memberships.c.user_id == users.c.user_id, memberships.c.tenant_id == tenant_scope)
            .exists()
        )
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFound(f"no user '{ref}'", details={"field": "user", "user": ref})
    return dict(row)


def create(conn: Connection, email: str, name: str, created_by: str, now: datetime, hub_admin: bool = False) -> tuple[dict[str, Any], bool]:
    """The present user with this email (made a hub admin if asked), or a new one; (row, whether it is new). A
    removed user comes back as a new person: no password, no second factor, no memberships."""
    found = by_email(conn, email)
    if found is not None and found["removed_at"] is None:
        if hub_admin and not found["hub_admin"]:
            conn.execute(update(users).where(users.c.user_id == found["user_id"]).values(hub_admin=True))
            found["hub_admin"] = True
        return found, False
    row = {
        "user_id": new_id("usr"), "email": email.lower(), "name": name, "issuer": None, "subject": None,
        "password_hash": None, "totp_secret": None, "recovery_codes": None, "hub_admin": hub_admin,
        "created_at": now, "created_by": created_by, "removed_at": None,
    }  # fmt: skip
    if found is not None:  # the email of a removed person: their row is renamed out of the way, kept for the audit
        renamed = f"{found['user_id']}~{found['email']}"[:254]
        conn.execute(update(users).where(users.c.user_id == found["user_id"]).values(email=renamed, issuer=None, subject=None))
    conn.execute(insert(users).values(**row))
    return row, True


def set_membership(conn: Connection, user_id: str, tenant_id: str, role: str, by: str, now: datetime) -> tuple[dict[str, Any], str | None]:
    """Give the user ``role`` in the tenant; (the membership, the role it had before or None)."""
    before = conn.execute(
        select(memberships.c.role).where(memberships.c.user_id == user_id, memberships.c.tenant_id == tenant_id)
    ).scalar()
    if before is None:
        conn.execute(insert(memberships).values(user_id=user_id, tenant_id=tenant_id, role=role, created_at=now, created_by=by))
    elif before != role:
        conn.execute(update(memberships).where(memberships.c.user_id == user_id, memberships.c.tenant_id == tenant_id).values(role=role))
    return {"user_id": user_id, "tenant_id": tenant_id, "role": role}, before


def remove_membership(conn: Connection, user_id: str, tenant_id: str) -> bool:
    stmt = delete(memberships).where(memberships.c.user_id == user_id, memberships.c.tenant_id == tenant_id)
    return conn.execute(stmt).rowcount > 0


def memberships_of(conn: Connection, user_ids: list[str], tenant_scope: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Each user's memberships (with the tenant's name), oldest first; only ``tenant_scope``'s when given."""
    stmt = (
        select(memberships.c.user_id, memberships.c.tenant_id, tenants.c.name.label("tenant_name"), memberships.c.role)
        .select_from(memberships.join(tenants, tenants.c.tenant_id == memberships.c.tenant_id))
        .where(memberships.c.user_id.in_(user_ids))
        .order_by(memberships.c.created_at, memberships.c.tenant_id)
    )
    if tenant_scope is not None:
        stmt = stmt.where(memberships.c.tenant_id == tenant_scope)
    found: dict[str, list[dict[str, Any]]] = {user_id: [] for user_id in user_ids}
    for row in conn.execute(stmt).mappings():
        found[row["user_id"]].append({k: row[k] for k in ("tenant_id", "tenant_name", "role")})
    return found


def list_users(conn: Connection, tenant_scope: str | None, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Present users by id (the members of ``tenant_scope`` when given), each with their memberships."""
    stmt = select(users).where(users.c.removed_at.is_(None))
    if tenant_scope is not None:
        stmt = stmt.where(
            select(memberships.c.user_id)
            .where(memberships.c.user_id == users.c.user_id, memberships.c.tenant_id == tenant_scope)
            .exists()
        )
    after = decode_cursor(cursor)
    if after:
        stmt = stmt.where(users.c.user_id > after)
    rows, next_cursor = page([dict(r) for r in conn.execute(stmt.order_by(users.c.user_id).limit(limit + 1)).mappings()], limit, lambda r: r["user_id"])
    held = memberships_of(conn, [r["user_id"] for r in rows], tenant_scope)
    return [{**r, "memberships": held[r["user_id"]]} for r in rows], next_cursor


def remove(conn: Connection, user_id: str, now: datetime) -> None:
    """The person leaves the hub: memberships and unused sign-up links go, the row stays (audit) as removed."""
    conn.execute(delete(memberships).where(memberships.c.user_id == user_id))
    conn.execute(update(signup_links).where(signup_links.c.user_id == user_id, signup_links.c.used_at.is_(None)).values(used_at=now))
    conn.execute(update(users).where(users.c.user_id == user_id).values(removed_at=now))


def set_session_keys_role(conn: Connection, user_id: str, tenant_id: str, role: str, scopes: list[str]) -> list[str]:
    """The person's live session keys in the tenant carry their new role from now on; returns their hashes."""
    live = (api_keys.c.user_id == user_id) & (api_keys.c.tenant_id == tenant_id) & api_keys.c.revoked_at.is_(None)
    hashes = conn.execute(select(api_keys.c.key_hash).where(live)).scalars().all()
    conn.execute(update(api_keys).where(live).values(role=role, scopes=scopes))
    return list(hashes)


def insert_link(conn: Connection, token_hash: str, user_id: str, expires_at: datetime, by: str, now: datetime) -> None:
    """A new sign-up link for the user; an earlier one still unused stops working."""
    conn.execute(update(signup_links).where(signup_links.c.user_id == user_id, signup_links.c.used_at.is_(None)).values(used_at=now))
    conn.execute(insert(signup_links).values(token_hash=token_hash, user_id=user_id, expires_at=expires_at, used_at=None, created_by=by))


@point_read
def link_user(conn: Connection, token_hash: str, now: datetime) -> dict[str, Any] | None:
    """The present user a sign-up link is for, while the link is unused and not expired."""
    stmt = (
        select(users)
        .select_from(signup_links.join(users, users.c.user_id == signup_links.c.user_id))
        .where(
            signup_links.c.token_hash == token_hash, signup_links.c.used_at.is_(None), signup_links.c.expires_at > now,
            users.c.removed_at.is_(None),
        )
    )  # fmt: skip
    row = conn.execute(stmt).mappings().first()
    return dict(row) if row else None


def take_link(conn: Connection, token_hash: str, password_hash: str, now: datetime) -> dict[str, Any] | None:
    """Use a sign-up link once: set its user's password; None if the link is unknown, used or expired."""
    user = link_user(conn, token_hash, now)
    if user is None:
        return None
    taken = update(signup_links).where(signup_links.c.token_hash == token_hash, signup_links.c.used_at.is_(None)).values(used_at=now)
    if conn.execute(taken).rowcount != 1:  # taken by a concurrent sign-up between the read and this write
        return None
    conn.execute(update(users).where(users.c.user_id == user["user_id"]).values(password_hash=password_hash))
    return {**user, "password_hash": password_hash}


def set_password_hash(conn: Connection, user_id: str, password_hash: str) -> None:
    """A rehash after a sign-in (argon2's parameters grew)."""
    conn.execute(update(users).where(users.c.user_id == user_id).values(password_hash=password_hash))


def set_second_factor(conn: Connection, user_id: str, totp_secret: str | None, recovery_codes: list[str] | None) -> None:
    conn.execute(update(users).where(users.c.user_id == user_id).values(totp_secret=totp_secret, recovery_codes=recovery_codes))


def use_recovery_code(conn: Connection, user_id: str, code_hash: str) -> bool:
    """Strike one unused recovery code off the user's list; whether it was there."""
    codes = conn.execute(select(users.c.recovery_codes).where(users.c.user_id == user_id)).scalar() or []
    if code_hash not in codes:
        return False
    conn.execute(update(users).where(users.c.user_id == user_id).values(recovery_codes=[c for c in codes if c != code_hash]))
    return True


# -- single sign-on -------------------------------------------------------------------------------------------------


def insert_sso_request(conn: Connection, row: dict[str, Any]) -> None:
    conn.execute(delete(sso_requests).where(sso_requests.c.expires_at <= row["expires_at"] - SSO_REQUEST_LIFETIME))
    conn.execute(insert(sso_requests).values(**row))


def take_sso_request(conn: Connection, state_hash: str, now: datetime) -> dict[str, Any] | None:
    """The request a callback's state names, once: it is deleted here (a replayed state finds nothing)."""
    row = conn.execute(
        delete(sso_requests).where(sso_requests.c.state_hash == state_hash).returning(*sso_requests.c)
    ).mappings().first()
    return dict(row) if row is not None and row["expires_at"] > now else None


@point_read
def sso_member(conn: Connection, issuer: str, subject: str) -> dict[str, Any] | None:
    """The user an identity provider's (issuer, subject) is, with their memberships; None if never seen."""
    row = conn.execute(select(users).where(users.c.issuer == issuer, users.c.subject == subject)).mappings().first()
    if row is None:
        return None
    held = conn.execute(
        select(memberships.c.tenant_id, tenants.c.name, memberships.c.role)
        .select_from(memberships.join(tenants, tenants.c.tenant_id == memberships.c.tenant_id))
        .where(memberships.c.user_id == row["user_id"])
    ).all()
    return {**row, "memberships": {tenant_id: role for tenant_id, _, role in held}, "names": {name: tenant_id for tenant_id, name, _ in held}}


def sign_in_sso(conn: Connection, issuer: str, subject: str, email: str, name: str, roles: list[tuple[str, str]], now: datetime) -> dict[str, Any]:
    """The person an identity provider vouches for, with exactly the memberships its claims give (tenants named by id
    or name, made when new); their email and name as the provider has them now. A person removed from this hub stays
    refused until an administrator adds them again; a local account with the same email becomes theirs."""
    user = conn.execute(select(users).where(users.c.issuer == issuer, users.c.subject == subject)).mappings().first()
    if user is not None and user["removed_at"] is not None:
        raise PermissionDenied("an administrator removed you from this hub: ask them to add you again", details={"reason": "removed"})
    if user is None:
        local = by_email(conn, email)
        if local is not None and local["removed_at"] is None and local["issuer"] is None:
            user = local
            conn.execute(update(users).where(users.c.user_id == local["user_id"]).values(issuer=issuer, subject=subject))
        elif local is not None and local["removed_at"] is None:
            raise Conflict(f"{email} signs in through another identity already", details={"reason": "email_taken"})
        else:
            user, _ = create(conn, email, name, f"sso:{issuer}"[:64], now)
            conn.execute(update(users).where(users.c.user_id == user["user_id"]).values(issuer=issuer, subject=subject))
    user = dict(user)
    if user["email"] != email or (name and user["name"] != name):
        clash = by_email(conn, email)
        if clash is None or clash["user_id"] == user["user_id"]:
            conn.execute(update(users).where(users.c.user_id == user["user_id"]).values(email=email, name=name or user["name"]))
            user.update(email=email, name=name or user["name"])
    wanted: dict[str, str] = {}
    names: dict[str, str] = {}
    for ref, role in roles:
        tenant = resolve_tenant(conn, ref) or create_tenant(conn, ref, now)
        wanted.setdefault(tenant["tenant_id"], role)
        names[tenant["name"]] = tenant["tenant_id"]
    held = {t: r for t, r in conn.execute(select(memberships.c.tenant_id, memberships.c.role).where(memberships.c.user_id == user["user_id"])).all()}
    for tenant_id in held.keys() - wanted.keys():
        remove_membership(conn, user["user_id"], tenant_id)
    for tenant_id, role in wanted.items():
        if held.get(tenant_id) != role:
            set_membership(conn, user["user_id"], tenant_id, role, f"sso:{issuer}"[:64], now)
    return {**user, "issuer": issuer, "subject": subject, "tenants": list(wanted), "memberships": wanted, "names": names}
