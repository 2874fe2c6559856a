"""Human output (Rich tables) or JSON for scripts, and errors as messages rather than tracebacks."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from agora_sdk.errors import AgoraError, InvalidArgument, PayloadTooLarge, PermissionDenied, Unauthenticated, Unavailable

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # an error stays one line, for grep


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    t = Table(title=title, header_style="bold cyan")
    for i, c in enumerate(columns):
        t.add_column(c, no_wrap=i == 0)  # the first column is the id to copy: never cut
    for r in rows:
        t.add_row(*("" if v is None else v if isinstance(v, Text) else escape(str(v)) for v in r))
    console.print(t)


# Exit codes scripts can rely on (also listed in ``agora --help``).
EXIT_ERROR, EXIT_BAD_INPUT, EXIT_UNAVAILABLE, EXIT_AUTH = 1, 2, 3, 4
EXIT_CODES_HELP = (
    "Exit codes: 0 done; 1 the hub refused (not found, conflict, …) or is not healthy; "
    "2 bad input; 3 hub unreachable or unavailable; 4 bad or missing key, or not allowed."
)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print ``message`` as an error; raise the returned exception to stop with ``code``."""
    err_console.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


@contextlib.contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn hub errors into one readable line and an exit code instead of a traceback."""
    try:
        yield
    except Unavailable as exc:
        err_console.print(f"[red]hub unavailable:[/red] {escape(exc.message)}")
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    except (Unauthenticated, PermissionDenied) as exc:
        hint = " (set AGORA_API_KEY or --api-key)" if isinstance(exc, Unauthenticated) else ""
        err_console.print(f"[red]{exc.code}:[/red] {escape(exc.message)}{hint}")
        raise typer.Exit(EXIT_AUTH) from None
    except AgoraError as exc:
        err_console.print(f"[red]{exc.code}:[/red] {escape(exc.message)}")
        if exc.details:
            err_console.print(json.dumps(exc.details, default=str), highlight=False, markup=False)
        bad_input = isinstance(exc, (InvalidArgument, PayloadTooLarge))
        raise typer.Exit(EXIT_BAD_INPUT if bad_input else EXIT_ERROR) from None
