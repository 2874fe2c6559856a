"""Human output (Rich tables) or JSON for scripts, and errors as messages rather than tracebacks."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from agora_sdk.errors import AgoraError, Unauthenticated, Unavailable

console = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, header_style="bold cyan")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    console.print(t)


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn hub errors into one readable line and a non-zero exit code."""
    try:
        yield
    except Unavailable as exc:
        err_console.print(f"[red]hub unavailable:[/red] {exc.message}")
        raise typer.Exit(3) from None
    except Unauthenticated as exc:
        err_console.print(f"[red]not authenticated:[/red] {exc.message} (set AGORA_API_KEY or --api-key)")
        raise typer.Exit(4) from None
    except AgoraError as exc:
        err_console.print(f"[red]{exc.code}:[/red] {exc.message}")
        if exc.details:
            err_console.print(json.dumps(exc.details, default=str))
        raise typer.Exit(2) from None
