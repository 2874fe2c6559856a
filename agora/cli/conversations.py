"""``agora conversations ls|show|send``: a tenant's conversations, read as a thread and continued."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import fail, table

app = typer.Typer(help="Conversations: the messages and tasks sharing a conversation id, as threads to read and continue.", no_args_is_help=True)

ConversationId = Annotated[str, typer.Argument(help="The conversation's id.")]
Tenant = Annotated[str | None, typer.Option(help="The tenant (id or name); an admin key names it.")]


def _who(ref: str | None, names: dict[str, str]) -> str:
    return names.get(ref or "", ref or "-")


@hub_command(app, "ls")
def ls(
    hub: Hub,
    agent: Annotated[str | None, typer.Option(help="Only those this agent (id or name) took part in.")] = None,
    tenant: Tenant = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """List conversations, the last active first."""
    result = hub.call("agora.conversations.list", agent=agent, tenant=tenant, limit=limit)
    rows = [
        [c["conversation_id"], c["last_activity_at"][:19], c["turn_count"], ", ".join(p["agent_name"] or p["agent_id"] for p in c["participants"]),
         c["summary"][:60]]
        for c in result["conversations"]
    ]  # fmt: skip
    more = " (more: use --limit)" if result["next_cursor"] else ""
    hub.show(result, lambda r: table(f"{len(r['conversations'])} conversation(s){more}", ["id", "last activity", "turns", "agents", "summary"], rows))


@hub_command(app, "show")
def show(
    hub: Hub, conversation: ConversationId, tenant: Tenant = None,
    limit: Annotated[int, typer.Option(help="The last this many turns.")] = 100,
) -> None:  # fmt: skip
    """Show a conversation as a thread: each message, and each task with its output and outcome."""
    found = hub.call("agora.conversations.get", conversation_id=conversation, tenant=tenant, limit=limit)

    def human(c: dict[str, Any]) -> None:
        names = {p["agent_id"]: p["agent_name"] or p["agent_id"] for p in c["participants"]}
        if c["has_earlier"]:
            typer.echo(f"(earlier turns left out: --limit {limit * 2} shows more)")
        for t in c["turns"]:
            head = f"{t['at'][:19]}  {_who(t['from_agent'], names)} → {_who(t['to_agent'], names)}"
            if t["kind"] == "task":
                head += f"  [task {t['task_type']}, {t['status']}]"
            typer.echo(head)
            typer.echo(f"  {t['text']}")
            if t["output"]:
                typer.echo(f"  output: {t['output']}")
            if t["result"] is not None:
                typer.echo(f"  result: {jsonlib.dumps(t['result'])}")
            if t["error"]:
                typer.echo(f"  error: {t['error']}")

    hub.show(found, human)


@hub_command(app, "send")
def send(
    hub: Hub,
    conversation: ConversationId,
    text: Annotated[str | None, typer.Argument(help="What to say.")] = None,
    content: Annotated[str | None, typer.Option(help="What to say as a JSON object, instead of TEXT.")] = None,
    to: Annotated[str | None, typer.Option(help="The agent (id or name); default: the last to speak.")] = None,
    send_as: Annotated[str | None, typer.Option("--as", help="message or task; default: as the agent's last turn was.")] = None,
    history: Annotated[int, typer.Option(help="How many earlier turns go with it.")] = 20,
    tenant: Tenant = None,
) -> None:
    """Continue a conversation: the next turn goes to its agent with the earlier turns."""
    body = None
    if content is not None:
        try:
            body = jsonlib.loads(content)
        except ValueError as exc:
            raise fail(f"--content is not JSON ({exc})") from None
    sent = hub.call(
        "agora.conversations.send", conversation_id=conversation, text=text, content=body, to_agent=to, send_as=send_as,
        history=history, tenant=tenant,
    )  # fmt: skip
    what = f"task {sent['task_id']}" if sent["task_id"] else f"message {sent['message_id']}"
    hub.show(sent, lambda s: typer.echo(f"sent {what} to {s['to_agent']} with {len(s['history'])} earlier turn(s)"))
