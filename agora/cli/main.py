"""Entry point of the ``agora`` command."""

from __future__ import annotations

import typer

from agora import __version__

from . import remote, serve

app = typer.Typer(help="Agora: a hub where software agents find each other, talk and hand out work.", no_args_is_help=True)
app.command("serve")(serve.serve)
app.add_typer(serve.db_app, name="db")
app.add_typer(remote.keys_app, name="keys")
app.add_typer(remote.agents_app, name="agents")
app.command("health")(remote.health)


@app.command("version")
def version() -> None:
    """Print Agora's version."""
    typer.echo(f"agora {__version__}")
