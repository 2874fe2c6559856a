"""Entry point of the ``agora`` command: the server commands and the client commands, one tree."""

from __future__ import annotations

import typer

from agora import __version__

from . import agents, backup, billing, chat, conversations, db, host, importer, keys, marketplace, mcp_stdio, messages, reviews, schedules, serve, store, tasks, tools, users, workflows
from .output import EXIT_CODES_HELP

app = typer.Typer(
    help="Agora: a hub where software agents find each other, talk and hand out work.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.command("serve")(serve.serve)
app.command("host")(host.host)
app.command("mcp", epilog=mcp_stdio.CONFIG_EXAMPLE)(mcp_stdio.mcp)
app.add_typer(db.db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.add_typer(agents.app, name="agents")
app.add_typer(tasks.app, name="tasks")
app.add_typer(messages.messages_app, name="messages")
app.add_typer(workflows.app, name="workflows")
app.add_typer(schedules.app, name="schedules")
app.add_typer(conversations.app, name="conversations")
app.add_typer(tools.tools_app, name="tools")
app.add_typer(marketplace.market_app, name="marketplace")
app.add_typer(marketplace.instance_app, name="instance")
app.add_typer(reviews.app, name="reviews")
app.add_typer(billing.app, name="billing")
app.registered_commands += messages.app.registered_commands + tools.app.registered_commands + marketplace.dashboard_app.registered_commands
app.registered_commands += backup.app.registered_commands
app.registered_commands += chat.app.registered_commands
app.add_typer(store.app, name="store")
app.add_typer(importer.app, name="import")


@app.command("version")
def version() -> None:
    """Print Agora's version."""
    typer.echo(f"agora {__version__}")
