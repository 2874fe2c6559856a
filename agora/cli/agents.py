"""``agora agents ls|show|register``: who is on the hub."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import table

app = typer.Typer(help="Find, inspect and register agents.", no_args_is_help=True)


@hub_command(app, "ls")
def ls(
    hub: Hub,
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="Required capability (repeatable).")] = None,
    status: Annotated[str | None, typer.Option(help="Only agents with this status (active, busy, offline, …).")] = None,
    text: Annotated[str | None, typer.Option(help="Words to find in name, description or capabilities.")] = None,
    min_rating: Annotated[float | None, typer.Option(help="Only marketplace agents whose listing is rated at least this (1 to 5).")] = None,
    min_reputation: Annotated[float | None, typer.Option(help="Only marketplace agents whose listing has at least this reputation (0 to 100).")] = None,
    sort: Annotated[str | None, typer.Option(help="id, name, status; rating or reputation: marketplace agents, best first.")] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """List or search agents."""
    result = hub.call(
        "agora.query.agents", capabilities=capability, status=status, text=text, limit=limit, min_rating=min_rating,
        min_reputation=min_reputation, sort=sort,
    )  # fmt: skip
    hub.show(
        result,
        lambda r: table(
            f"{r['count']} agent(s)",
            ["agent_id", "name", "status", "tier", "capabilities", "rating", "last heartbeat"],
            [[a["agent_id"], a["agent_name"], a["status"], a["service_tier"], ", ".join(a["capabilities"]), _rating(a), a["last_heartbeat"]] for a in r["agents"]],
        ),
    )


def _rating(agent: dict[str, Any]) -> str:
    """A marketplace agent's listing rating (reviews) and reputation; nothing for others."""
    listing = agent.get("listing")
    return f"{listing['rating']:.2f}★ ({listing['rating_count']}) · {listing['reputation']:.0f}" if listing else ""


@hub_command(app, "show")
def show(hub: Hub, agent: Annotated[str, typer.Argument(help="Agent id or name.")]) -> None:
    """Show one agent."""
    found = hub.call("agora.agents.get", agent=agent)
    hub.show(found, lambda a: table(a["agent_name"], ["field", "value"], [[k, v] for k, v in a.items()]))


@hub_command(app, "register")
def register(
    hub: Hub,
    name: Annotated[str, typer.Argument(help="Unique agent name within the tenant.")],
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="A capability it offers (repeatable).")] = None,
    description: Annotated[str, typer.Option(help="What the agent does, in a sentence.")] = "",
    tier: Annotated[str | None, typer.Option(help="Service tier: basic, premium or enterprise.")] = None,
) -> None:
    """Register an agent (again: same name, same id) and print its token, shown once."""
    registration = hub.call(
        "agora.agents.register", agent_name=name, capabilities=capability, description=description or None, service_tier=tier
    )

    def human(r: dict[str, Any]) -> None:
        table(f"registered {name}", ["agent_id", "status", "services"], [[r["agent_id"], r["status"], len(r["available_services"])]])
        if r.get("agent_token"):
            typer.echo(f"agent token (shown once; use as AGORA_API_KEY): {r['agent_token']}")

    hub.show(registration, human)
