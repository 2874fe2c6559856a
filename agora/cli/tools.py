"""``agora call`` (any tool), ``agora tools ls|schema`` and ``agora health``."""

from __future__ import annotations

import json as jsonlib
import sys
from typing import Annotated, Any

import typer
from rich.text import Text

from .connection import Hub, hub_command
from .output import EXIT_ERROR, console, emit_json, fail, table

app = typer.Typer()
tools_app = typer.Typer(help="The hub's tool catalog.", no_args_is_help=True)


def _tool_names(incomplete: str) -> list[str]:
    """Shell completion for tool names, from the catalog this CLI ships with (imported only when completing)."""
    from agora.catalog.tools import all_tools

    return [t.name for t in all_tools() if t.name.startswith(incomplete)]


def _full_name(tool: str) -> str:
    return tool if tool.startswith(("agora.", "ext.")) else f"agora.{tool}"


def parse_arguments(pairs: list[str], json_args: str | None) -> dict[str, Any]:
    """``--json`` (an object, or ``-`` for stdin) then ``key=value`` (a string) and ``key:=value`` (JSON) on top."""
    args: dict[str, Any] = {}
    if json_args is not None:
        text = sys.stdin.read() if json_args == "-" else json_args
        try:
            args = jsonlib.loads(text)
        except ValueError as exc:
            raise fail(f"--json is not valid JSON ({exc})") from None
        if not isinstance(args, dict):
            raise fail("--json must be a JSON object of arguments")
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise fail(f"argument {pair!r} is not key=value (a string) or key:=value (JSON)")
        if key.endswith(":"):
            key = key[:-1]
            try:
                args[key] = jsonlib.loads(value)
            except ValueError as exc:
                raise fail(f"{key}:= takes JSON, got {value!r} ({exc})") from None
        else:
            args[key] = value
    return args


CALL_EXAMPLE = "Example: agora call task.assign task_type=summarize payload:='{\"url\": \"https://…\"}'"


@hub_command(app, "call", json_option=False, epilog=CALL_EXAMPLE)
def call(
    hub: Hub,
    tool: Annotated[str, typer.Argument(help="Tool name, e.g. agora.messaging.send (the agora. prefix may be left out).", autocompletion=_tool_names)],
    arguments: Annotated[list[str] | None, typer.Argument(help="key=value (a string) or key:=value (JSON), in any number.")] = None,
    json_args: Annotated[str | None, typer.Option("--json", help="All arguments as one JSON object; '-' reads it from stdin.")] = None,
) -> None:
    """Call any catalog tool and print its JSON result: every operation the hub has, from a terminal."""
    emit_json(hub.client.call(_full_name(tool), **parse_arguments(arguments or [], json_args)))


@hub_command(tools_app, "ls")
def ls(
    hub: Hub,
    category: Annotated[str | None, typer.Option(help="Only this category (messaging, task, agents, …).")] = None,
    text: Annotated[str | None, typer.Option(help="Words to find in names and descriptions.")] = None,
) -> None:
    """List the hub's tools."""
    result = hub.call("agora.discovery.list", category=category, text=text)
    hub.show(
        result,
        lambda r: table(
            f"{r['count']} tool(s)",
            ["name", "version", "kind", "description"],
            [[t["name"], t["version"], "read" if t["read_only"] else "write", t["description"]] for t in r["services"]],
        ),
    )


@hub_command(tools_app, "schema")
def schema(hub: Hub, name: Annotated[str, typer.Argument(help="Tool name.", autocompletion=_tool_names)]) -> None:
    """Show a tool's input and output JSON Schemas."""
    result = hub.call("agora.discovery.schema", name=_full_name(name))
    if hub.json:
        emit_json(result)
    else:
        console.print_json(data=result)


HEALTH_COLOURS = {"healthy": "green", "degraded": "yellow", "critical": "red"}


@hub_command(app, "health")
def health(hub: Hub) -> None:
    """Show the hub's health, component by component (exit 1 unless healthy)."""
    result = hub.call("agora.admin.health")
    hub.show(
        result,
        lambda h: table(
            f"hub {h['version']}: {h['status']}",
            ["component", "status", "detail"],
            [[name, Text(c["status"], style=HEALTH_COLOURS[c["status"]]), c["detail"]] for name, c in h["components"].items()],
        ),
    )
    if result["status"] != "healthy":
        raise typer.Exit(EXIT_ERROR)
