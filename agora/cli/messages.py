"""``agora send``, ``agora inbox``, ``agora ack``, ``agora tail`` and ``agora messages search``: messages and live events
from a terminal."""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from agora_sdk.errors import Unavailable

from .connection import Hub, hub_command
from .output import console, fail, table

app = typer.Typer()
messages_app = typer.Typer(help="Look through the messages the hub stored.", no_args_is_help=True)

BATCH_LIMIT = 1000  # agora.messaging.send_batch's own limit
FOLLOW_WAIT = 20.0  # seconds each long poll of ``inbox --follow`` waits


def _content(text: str, as_json: bool) -> Any:
    if not as_json:
        return text
    try:
        return jsonlib.loads(text)
    except ValueError as exc:
        raise fail(f"--json-content: CONTENT is not JSON ({exc})") from None


def _short(content: Any, width: int = 60) -> str:
    text = content if isinstance(content, str) else jsonlib.dumps(content)
    return text if len(text) <= width else text[: width - 1] + "…"


@hub_command(app, "send")
def send(
    hub: Hub,
    to: Annotated[str, typer.Argument(help="Recipient agent id or name, or 'broadcast'; with --topic, the topic.")],
    content: Annotated[str, typer.Argument(help="The message: text, or JSON with --json-content.")],
    topic: Annotated[bool, typer.Option("--topic", help="TO is a topic: publish to its subscribers.")] = False,
    json_content: Annotated[bool, typer.Option("--json-content", help="Parse CONTENT as JSON.")] = False,
    message_type: Annotated[str | None, typer.Option("--type", help="Message type (info, task, alert, …).")] = None,
    performative: Annotated[str | None, typer.Option(help="ACP performative: request, inform, propose, …")] = None,
    priority: Annotated[str | None, typer.Option(help="low, normal, high or urgent.")] = None,
    conversation: Annotated[str | None, typer.Option(help="Conversation id, to thread a reply.")] = None,
    reply_to: Annotated[str | None, typer.Option("--reply-to", help="The message id this answers.")] = None,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Resending with the same key sends once.")] = None,
    repeat: Annotated[int, typer.Option(min=1, help="Send it N times (in batches of 1,000, with a progress bar).")] = 1,
) -> None:
    """Send a message to an agent, to everyone (broadcast) or to a topic, as the key's agent (an admin key sends as system)."""
    correlation = {"conversation_id": conversation, "reply_to": reply_to} if conversation or reply_to else None
    message = {
        ("topic" if topic else "to_agent"): to,
        "content": _content(content, json_content),
        "message_type": message_type,
        "performative": performative,
        "priority": priority,
        "correlation": correlation,
        "idempotency_key": idempotency_key,
    }
    message = {k: v for k, v in message.items() if v is not None}
    if repeat == 1:
        receipt = hub.call("agora.messaging.publish" if topic else "agora.messaging.send", **message)
        hub.show(receipt, lambda r: typer.echo(f"{r['status']} {r['message_id']} at {r['timestamp']}"))
        return
    if idempotency_key:
        raise fail("--repeat and --idempotency-key do not go together: the repeats would collapse into one message")
    receipts = _send_many(hub, message, repeat)
    hub.show({"receipts": receipts, "count": len(receipts)}, lambda r: typer.echo(f"sent {r['count']} message(s)"))


def _send_many(hub: Hub, message: dict[str, Any], count: int) -> list[dict[str, Any]]:
    receipts: list[dict[str, Any]] = []
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=hub.json) as progress:
        bar = progress.add_task("send", total=count)
        while len(receipts) < count:
            batch = [message] * min(BATCH_LIMIT, count - len(receipts))
            receipts += hub.call("agora.messaging.send_batch", messages=batch)["receipts"]
            progress.update(bar, completed=len(receipts))
    return receipts


def _message_rows(messages: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [m["message_id"], m["from_agent"], m["message_type"], m["priority"], _short(m["content"]), m["timestamp"][:19], m["delivery_count"]]
        for m in messages
    ]


MESSAGE_COLUMNS = ["message_id", "from", "type", "priority", "content", "sent", "deliveries"]


@hub_command(app, "inbox")
def inbox(
    hub: Hub,
    agent: Annotated[str | None, typer.Option(help="Whose inbox (an admin or tenant key must name the agent).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep waiting for new messages (Ctrl-C stops).")] = False,
    ack: Annotated[bool, typer.Option("--ack", help="Acknowledge what is shown; otherwise it comes back after the visibility timeout.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many per fetch.")] = 50,
    message_type: Annotated[str | None, typer.Option("--type", help="Only this message type.")] = None,
    visibility_timeout: Annotated[float | None, typer.Option("--visibility-timeout", help="Seconds shown messages stay hidden from other readers.")] = None,
) -> None:
    """Show messages waiting in an inbox; --follow waits for more, --ack takes them out."""
    query = {"agent": agent, "limit": limit, "message_type": message_type, "visibility_timeout": visibility_timeout}
    try:
        while True:
            fetched = hub.call("agora.messaging.receive", **query, wait=FOLLOW_WAIT if follow else None)
            messages = fetched["messages"]
            if ack and messages:
                hub.call("agora.messaging.ack", agent=agent, message_ids=[m["message_id"] for m in messages])
            if follow:
                _print_followed(hub, messages)
            else:
                hub.show(fetched, lambda r: table(f"{r['count']} message(s)", MESSAGE_COLUMNS, _message_rows(r["messages"])))
                return
    except KeyboardInterrupt:
        return


def _print_followed(hub: Hub, messages: list[dict[str, Any]]) -> None:
    for m in messages:
        if hub.json:
            typer.echo(jsonlib.dumps(m, default=str))  # one object per line
        else:
            console.print(Text.assemble((m["timestamp"], "dim"), " ", (m["from_agent"], "bold"), f" [{m['message_type']}] ", _short(m["content"], 200)))


@hub_command(app, "ack")
def ack(
    hub: Hub,
    message_ids: Annotated[list[str] | None, typer.Argument(help="Message ids to acknowledge.")] = None,
    up_to: Annotated[str | None, typer.Option("--up-to", help="Acknowledge everything up to this cursor.")] = None,
    agent: Annotated[str | None, typer.Option(help="Whose inbox (an admin or tenant key must name the agent).")] = None,
) -> None:
    """Acknowledge messages: they leave the inbox for good."""
    if not message_ids and not up_to:
        raise fail("give message ids or --up-to CURSOR")
    result = hub.call("agora.messaging.ack", agent=agent, message_ids=message_ids, up_to=up_to)
    hub.show(result, lambda r: typer.echo(f"acked {r['acked']} message(s)"))


SEARCH_COLUMNS = ["seq", "message_id", "sent", "kind", "from", "to", "type", "content"]


def _found_rows(messages: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            m["seq"], m["message_id"], m["created_at"][:19], m["kind"], m["from_agent_name"] or m["from_agent"],
            m["to_agent_name"] or m["to_agent"] or m["topic"] or "", m["message_type"], _short(m["content"]),
        ]
        for m in messages
    ]  # fmt: skip


@hub_command(messages_app, "search")
def search(
    hub: Hub,
    text: Annotated[str | None, typer.Argument(help="Text the content contains (any case).")] = None,
    from_agent: Annotated[str | None, typer.Option("--from", help="Sent by this agent (id or name), or by 'system'.")] = None,
    to_agent: Annotated[str | None, typer.Option("--to", help="Sent directly to this agent (id or name).")] = None,
    topic: Annotated[str | None, typer.Option(help="Published to this topic.")] = None,
    kind: Annotated[str | None, typer.Option(help="direct, broadcast or topic.")] = None,
    message_type: Annotated[str | None, typer.Option("--type", help="Only this message type.")] = None,
    performative: Annotated[str | None, typer.Option(help="ACP performative: request, inform, propose, …")] = None,
    since: Annotated[str | None, typer.Option(help="Sent at or after this ISO 8601 time.")] = None,
    until: Annotated[str | None, typer.Option(help="Sent before this ISO 8601 time.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's messages (an admin key; id or name).")] = None,
    limit: Annotated[int | None, typer.Option(help="How many to show (1-500, default 50).")] = None,
    cursor: Annotated[str | None, typer.Option(help="The next page: the cursor the previous one printed.")] = None,
) -> None:
    """Search stored messages, newest first."""
    result = hub.call(
        "agora.messaging.search", text=text, from_agent=from_agent, to_agent=to_agent, topic=topic, kind=kind,
        message_type=message_type, performative=performative, since=since, until=until, tenant=tenant, limit=limit,
        cursor=cursor,
    )  # fmt: skip

    def human(r: dict[str, Any]) -> None:
        more = f" (next page: --cursor {r['next_cursor']})" if r["has_more"] else ""
        if r.get("partial"):
            more = f" in the newest 100,000 messages searched; older ones: --cursor {r['next_cursor']}"
        table(f"{len(r['messages'])} message(s){more}", SEARCH_COLUMNS, _found_rows(r["messages"]))

    hub.show(result, human)


@hub_command(app, "tail")
def tail(
    hub: Hub,
    types: Annotated[list[str] | None, typer.Option("--type", "-t", help="Only these event types (repeatable), e.g. task_assigned, message.")] = None,
) -> None:
    """Print live events as they happen (agent, task and message events the key may see); Ctrl-C stops.

    Reconnects by itself and resumes where it left off. With --json, one event object per line (NDJSON).
    """
    _check_reachable(hub)
    try:
        for event in hub.client.events(types or None):
            if hub.json:
                typer.echo(event.model_dump_json(exclude_none=True))
                continue
            if event.message:
                stamp, detail = event.message.timestamp, f"{event.message.from_agent}: {_short(event.message.content, 100)}"
            else:
                stamp, detail = event.timestamp, _short(event.data or {}, 100)
            console.print(Text.assemble((stamp.isoformat() if stamp else "", "dim"), " ", (event.type, "bold cyan"), " ", detail))
    except KeyboardInterrupt:
        return


def _check_reachable(hub: Hub) -> None:
    """The event stream retries forever; say at once when there is no hub at all."""
    url = hub.client.config.url
    try:
        httpx.get(f"{url}/health", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach the hub at {url}: {exc}") from None
