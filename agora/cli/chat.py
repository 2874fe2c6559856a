"""``agora search "…"`` (the ranked search) and ``agora chat`` (the marketplace chat: one message, or a conversation
at a prompt), streamed as the hub works: each tool call as it happens, the answer as it comes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.markup import escape

from agora_sdk.errors import AgoraError, Unauthenticated, Unavailable
from agora_sdk.wire.chat import ChatEvent

from .connection import Hub, hub_command
from .output import console, emit_json, err_console, table

app = typer.Typer()
QUIT = frozenset({"exit", "quit", "bye", ":q"})


def _price(hit: dict[str, Any]) -> str:
    pricing = hit.get("pricing") or {}
    if pricing.get("price") is None:
        return ""
    unit = {"per_request": "/request", "per_minute": "/minute", "per_hour": "/hour", "hybrid": "/request + base"}.get(pricing.get("model") or "", "")
    return f"{Decimal(pricing['price']).normalize():f}{unit} {pricing.get('currency') or ''}".strip()


@hub_command(app, "search")
def search(
    hub: Hub,
    query: Annotated[str, typer.Argument(help="What is wanted, as you would say it: 'french to english translator under a cent a request'.")],
    kind: Annotated[list[str], typer.Option("--kind", "-k", help="listing, agent or service (the hub's tools); repeat for more.")] = [],  # noqa: B006 - typer reads it
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    max_price: Annotated[str | None, typer.Option(help="Unit price at most this (a decimal, e.g. 0.01).")] = None,
    region: Annotated[str | None, typer.Option(help="A region ('eu-west'), or a prefix ending in '-' ('eu-').")] = None,
    language: Annotated[list[str], typer.Option("--language", "-l", help="Works in this language (ISO 639-1); repeat for more.")] = [],  # noqa: B006
    literal: Annotated[bool, typer.Option("--literal", help="Read the words only: no constraints from them ('under a cent').")] = False,
    mode: Annotated[str | None, typer.Option(help="auto, lexical, semantic or hybrid.")] = None,
    limit: Annotated[int, typer.Option(help="How many results.")] = 10,
) -> None:
    """Find agents, listings and the hub's tools by saying what you need (agora.marketplace.search)."""
    result = hub.call(
        "agora.marketplace.search", q=query, kinds=kind, category=category, max_price=max_price, region=region,
        languages=language, interpret=False if literal else None, mode=mode, limit=limit,
    )  # fmt: skip

    def human(found: dict[str, Any]) -> None:
        rows = [[h["id"], h["name"], h["kind"], h.get("category") or "", _price(h), h.get("region") or "", f"{h['score']:.4f}",
                 ", ".join(h["why"]["matched_fields"])] for h in found["results"]]  # fmt: skip
        table(f"{len(rows)} result(s) for “{found['query']}” ({found['mode']})", ["id", "name", "kind", "category", "price", "region", "score", "matched"], rows)
        reading = found["interpretation"]
        if reading["understood"] or reading["corrections"]:
            fixed = ", ".join(f"{k} → {v}" for k, v in reading["corrections"].items())
            console.print(f"[dim]understood: {escape(', '.join(reading['understood']) or '—')}" + (f"; corrected: {escape(fixed)}" if fixed else "") + "[/dim]")

    hub.show(result, human)


@hub_command(app, "chat")
def chat(
    hub: Hub,
    message: Annotated[str | None, typer.Argument(help="Ask this and print the answer; without it, a conversation at a prompt.")] = None,
    conversation: Annotated[str | None, typer.Option("--conversation", help="Continue this conversation (its id, conv_…).")] = None,
) -> None:
    """Talk to the marketplace (agora.marketplace.chat): find agents, read one's details, count, start an instance,
    register an agent. Tool calls show as they happen; 'exit' or Ctrl-D ends a conversation."""
    if message is not None:
        _turn(hub, message, conversation)
        return
    console.print("[dim]Ask the marketplace; 'exit' or Ctrl-D to leave.[/dim]")
    while True:
        try:
            line = console.input("[bold cyan]you>[/bold cyan] ").strip()
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        if line.lower() in QUIT:
            return
        if not line:
            continue
        try:
            conversation = _turn(hub, line, conversation)
        except (Unauthenticated, Unavailable):
            raise  # no later turn fares better: the command ends with its exit code
        except AgoraError as exc:
            err_console.print(f"[red]{exc.code}:[/red] {escape(exc.message)}")


def _turn(hub: Hub, message: str, conversation: str | None) -> str:
    """One turn: its events as they come (or, with --json, the whole answer); returns the conversation's id."""
    answer: dict[str, Any] = {}
    with console.status("asking the hub…") as waiting:
        for event in hub.client.chat_stream(message, conversation):
            if event.event == "answer":
                answer = event.data
            elif not hub.json:
                waiting.stop()
                _show(event)
    if hub.json:
        emit_json(answer)
    else:
        console.print(f"\n[dim]({answer['planner']} planner; conversation {answer['conversation_id']})[/dim]")
    return str(answer["conversation_id"])


def _show(event: ChatEvent) -> None:
    """A tool call as one dim line with its status, the answer's words as they come, a notice in yellow."""
    if event.event == "tool":
        status, reason = event.data["status"], event.data.get("reason")
        colour = {"used": "green", "failed": "yellow", "refused": "red"}.get(status, "white")
        console.print(f"[dim]  → {escape(event.data['tool'])}[/dim] [{colour}]{status}[/{colour}]" + (f"[dim]: {escape(reason)}[/dim]" if reason else ""))
    elif event.event == "text":
        console.print(escape(event.data["delta"]), end="")
    elif event.event == "notice":
        console.print(f"\n[yellow]{escape(event.data['notice'])}[/yellow]")
