"""Commands that talk to a hub over its REST door: keys, agents, health."""

from __future__ import annotations

from typing import Annotated

import typer

from agora_sdk import AgoraClient

from .output import emit_json, friendly_errors, table

Url = Annotated[str | None, typer.Option("--url", envvar="AGORA_URL", help="Hub URL (default http://127.0.0.1:8080).")]
ApiKey = Annotated[
    str | None,
    typer.Option("--api-key", envvar="AGORA_API_KEY", help="API key (default: <data-dir>/admin.key of a local hub)."),
]
DataDir = Annotated[str | None, typer.Option("--data-dir", envvar="AGORA_DATA_DIR", help="Local hub data directory.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _client(url: str | None, api_key: str | None, data_dir: str | None) -> AgoraClient:
    return AgoraClient(url, api_key, data_dir=data_dir)


keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
agents_app = typer.Typer(help="Look at registered agents.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    kind: Annotated[str, typer.Option(help="customer, agent or admin.")] = "customer",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    tenant: Annotated[str | None, typer.Option(help="Tenant id or name (a new name creates the tenant).")] = None,
    agent: Annotated[str | None, typer.Option(help="For agent keys: the agent id or name.")] = None,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="A scope to grant (repeatable; default: all but admin).")] = None,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Create an API key; the secret is printed once."""
    with friendly_errors(), _client(url, api_key, data_dir) as c:
        args = {"kind": kind, "name": name, "tenant": tenant, "agent": agent, "scopes": scope or None}
        created = c.call("agora.admin.keys.create", **{k: v for k, v in args.items() if v is not None})
    if json:
        emit_json(created)
        return
    info = created["info"]
    table("API key created", ["key_id", "kind", "tenant", "scopes"], [[info["key_id"], info["kind"], info["tenant_id"], " ".join(info["scopes"])]])
    typer.echo(f"secret (shown once): {created['key']}")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    include_revoked: Annotated[bool, typer.Option("--include-revoked", help="Show revoked keys too.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """List API keys (never their secrets)."""
    with friendly_errors(), _client(url, api_key, data_dir) as c:
        args = {"include_revoked": include_revoked, "limit": 500, **({"tenant": tenant} if tenant else {})}
        result = c.call("agora.admin.keys.list", **args)
    if json:
        emit_json(result)
        return
    table(
        f"{result['count']} key(s)",
        ["key_id", "kind", "name", "tenant", "agent", "prefix", "created", "revoked"],
        [[k["key_id"], k["kind"], k["name"], k["tenant_id"], k["agent_id"], k["prefix"], k["created_at"], k["revoked_at"]] for k in result["keys"]],
    )


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (key_…).")],
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Revoke an API key."""
    with friendly_errors(), _client(url, api_key, data_dir) as c:
        result = c.call("agora.admin.keys.revoke", key_id=key_id)
    emit_json(result) if json else typer.echo(f"revoked {result['key_id']} at {result['revoked_at']}")


@agents_app.command("ls")
def agents_ls(
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="Required capability (repeatable).")] = None,
    status: Annotated[str | None, typer.Option(help="Only agents with this status.")] = None,
    text: Annotated[str | None, typer.Option(help="Words to find in name, description or capabilities.")] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """List or search agents."""
    args = {"capabilities": capability or [], "status": status, "text": text, "limit": limit}
    with friendly_errors(), _client(url, api_key, data_dir) as c:
        result = c.call("agora.query.agents", **{k: v for k, v in args.items() if v not in (None, [])})
    if json:
        emit_json(result)
        return
    table(
        f"{result['count']} agent(s)",
        ["agent_id", "name", "status", "tier", "capabilities", "last heartbeat"],
        [[a["agent_id"], a["agent_name"], a["status"], a["service_tier"], ", ".join(a["capabilities"]), a["last_heartbeat"]] for a in result["agents"]],
    )


@agents_app.command("show")
def agents_show(
    agent: Annotated[str, typer.Argument(help="Agent id or name.")],
    url: Url = None,
    api_key: ApiKey = None,
    data_dir: DataDir = None,
    json: Json = False,
) -> None:
    """Show one agent."""
    with friendly_errors(), _client(url, api_key, data_dir) as c:
        a = c.call("agora.agents.get", agent=agent)
    if json:
        emit_json(a)
        return
    table(a["agent_name"], ["field", "value"], [[k, v] for k, v in a.items()])


def health(url: Url = None, api_key: ApiKey = None, data_dir: DataDir = None, json: Json = False) -> None:
    """Show the hub's health, component by component (exit 1 unless healthy)."""
    with friendly_errors(), _client(url, api_key, data_dir) as c:
        h = c.call("agora.admin.health")
    if json:
        emit_json(h)
    else:
        colour = {"healthy": "green", "degraded": "yellow", "critical": "red"}
        table(
            f"hub {h['version']}: {h['status']}",
            ["component", "status", "detail"],
            [[name, f"[{colour[c['status']]}]{c['status']}[/]", c["detail"]] for name, c in h["components"].items()],
        )
    if h["status"] != "healthy":
        raise typer.Exit(1)
