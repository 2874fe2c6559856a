"""``agora users create|ls|set-role|remove``: people, their roles in tenants, and their one-time sign-up links."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import table

app = typer.Typer(help="Manage people and their roles (a tenant's admin key, or the hub's).", no_args_is_help=True)

ROLE_HELP = "viewer, billing, operator, developer or admin."
Tenant = Annotated[str | None, typer.Option(help="Tenant id or name (a tenant admin's own tenant when left out).")]


def _roles(user: dict[str, Any]) -> str:
    held = ", ".join(f"{m['role']}@{m['tenant_name']}" for m in user["memberships"])
    return ", ".join(filter(None, ["hub admin" if user["hub_admin"] else "", held])) or "—"


@hub_command(app, "create")
def create(
    hub: Hub,
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    role: Annotated[str | None, typer.Option(help=f"Their role in the tenant: {ROLE_HELP}")] = None,
    tenant: Tenant = None,
    name: Annotated[str, typer.Option(help="How the console shows them.")] = "",
    hub_admin: Annotated[bool, typer.Option("--hub-admin", help="Make them an administrator of the whole hub.")] = False,
    link_hours: Annotated[int, typer.Option(help="Hours the sign-up link stays valid.")] = 72,
) -> None:
    """Add a person (with a role in a tenant); prints their one-time sign-up link, once."""
    result = hub.call(
        "agora.users.create", email=email, role=role, tenant=tenant, name=name or None, hub_admin=hub_admin or None,
        link_hours=link_hours,
    )  # fmt: skip
    link = hub.client.config.url + result["signup_path"] if result["signup_path"] else None
    if link:
        result["signup_url"] = link

    def human(r: dict[str, Any]) -> None:
        user = r["user"]
        table("user added" if r["created"] else "user updated", ["user_id", "email", "roles"], [[user["user_id"], user["email"], _roles(user)]])
        if link:
            typer.echo(f"sign-up link (shown once, valid until {r['signup_expires_at']}): {link}")
        else:
            typer.echo("they sign in as they already do (no sign-up link needed)")

    hub.show(result, human)


@hub_command(app, "ls")
def list_users(hub: Hub, tenant: Tenant = None) -> None:
    """List people and their roles."""
    result = hub.call("agora.users.list", tenant=tenant, limit=500)
    hub.show(
        result,
        lambda r: table(
            f"{len(r['users'])} user(s)",
            ["user_id", "email", "name", "roles", "sign-in", "2FA"],
            [
                [u["user_id"], u["email"], u["name"], _roles(u), u["single_sign_on"] or ("password" if u["has_password"] else "invited"), "yes" if u["two_factor"] else "no"]
                for u in r["users"]
            ],
        ),
    )


@hub_command(app, "set-role")
def set_role(
    hub: Hub,
    user: Annotated[str, typer.Argument(help="The user's id or email.")],
    role: Annotated[str, typer.Argument(help=ROLE_HELP)],
    tenant: Tenant = None,
) -> None:
    """Change a member's role in a tenant (their sessions there carry it from their next call)."""
    result = hub.call("agora.memberships.set", user=user, role=role, tenant=tenant)
    hub.show(result, lambda r: typer.echo(f"{r['user_id']} is {r['role']} in {r['tenant_id']} (was {r['previous_role'] or 'not a member'})"))


@hub_command(app, "remove")
def remove(
    hub: Hub,
    user: Annotated[str, typer.Argument(help="The user's id or email.")],
    tenant: Annotated[
        str | None, typer.Option(help="Only take them out of this tenant; without it (the hub's admin key) they leave the hub.")
    ] = None,
    everywhere: Annotated[bool, typer.Option("--everywhere", help="Remove them from the hub (the hub administrator only).")] = False,
) -> None:
    """Take a person out of a tenant, or out of the hub; their sessions end at once."""
    if everywhere:
        result = hub.call("agora.users.remove", user=user)
        hub.show(result, lambda r: typer.echo(f"removed {r['user_id']} from the hub; {r['sessions_ended']} session(s) ended"))
        return
    result = hub.call("agora.memberships.remove", user=user, tenant=tenant)
    hub.show(result, lambda r: typer.echo(f"removed {r['user_id']} from {r['tenant_id']}; {r['sessions_ended']} session(s) ended"))
