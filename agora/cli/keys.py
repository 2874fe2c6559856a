"""``agora keys create|list|revoke``: API keys for tenants, agents and administrators."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import table

app = typer.Typer(help="Manage API keys (admin key needed).", no_args_is_help=True)


@hub_command(app, "create")
def create(
    hub: Hub,
    kind: Annotated[str, typer.Option(help="customer, agent or admin.")] = "customer",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    tenant: Annotated[str | None, typer.Option(help="Tenant id or name (a new name creates the tenant).")] = None,
    agent: Annotated[str | None, typer.Option(help="For agent keys: the agent id or name.")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="A scope to grant (repeatable; default: all but admin).")] = None,
    role: Annotated[
        str | None,
        typer.Option(help="Limit a customer key to a role of its tenant: viewer, billing, operator, developer or admin."),
    ] = None,
) -> None:
    """Create an API key; the secret is printed once."""
    created = hub.call("agora.admin.keys.create", kind=kind, name=name, tenant=tenant, agent=agent, scopes=scope, role=role)

    def human(created: dict[str, Any]) -> None:
        info = created["info"]
        table(
            "API key created", ["key_id", "kind", "tenant", "role", "scopes"],
            [[info["key_id"], info["kind"], info["tenant_id"], info["role"] or "", " ".join(info["scopes"])]],
        )  # fmt: skip
        typer.echo(f"secret (shown once): {created['key']}")

    hub.show(created, human)


@hub_command(app, "list")
def list_keys(
    hub: Hub,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    include_revoked: Annotated[bool, typer.Option("--include-revoked", help="Show revoked keys too.")] = False,
) -> None:
    """List API keys (never their secrets)."""
    result = hub.call("agora.admin.keys.list", tenant=tenant, include_revoked=include_revoked, limit=500)
    hub.show(
        result,
        lambda r: table(
            f"{r['count']} key(s)",
            ["key_id", "kind", "name", "tenant", "agent", "role", "prefix", "created", "revoked"],
            [
                [k["key_id"], k["kind"], k["name"], k["tenant_id"], k["agent_id"], k["role"], k["prefix"], k["created_at"], k["revoked_at"]]
                for k in r["keys"]
            ],
        ),
    )


@hub_command(app, "revoke")
def revoke(hub: Hub, key_id: Annotated[str, typer.Argument(help="The key id (key_…).")]) -> None:
    """Revoke an API key."""
    result = hub.call("agora.admin.keys.revoke", key_id=key_id)
    hub.show(result, lambda r: typer.echo(f"revoked {r['key_id']} at {r['revoked_at']}"))
