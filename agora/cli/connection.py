"""How every remote command reaches a hub: ``--url``, ``--api-key``, ``--data-dir`` and ``--json``, declared once.

``@hub_command(group, "name")`` registers a function whose first parameter is a :class:`Hub`; the options
are added to the command's signature, so ``agora inbox --json --url …`` works on every command, and the body runs
inside :func:`friendly_errors` (a readable line and an exit code instead of a traceback).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from agora_sdk import AgoraClient

from .output import emit_json, friendly_errors

# A command-line user wants to hear quickly that a hub is down, not after a minute of backoff.
CLI_RETRIES = 1


@dataclass
class Hub:
    """Where the command's hub is and how the result should be printed; ``client`` connects on first use."""

    url: str | None
    api_key: str | None
    data_dir: str | None
    json: bool
    _client: AgoraClient | None = field(default=None, repr=False)

    @property
    def client(self) -> AgoraClient:
        if self._client is None:
            self._client = AgoraClient(self.url, self.api_key, data_dir=self.data_dir, retries=CLI_RETRIES)
        return self._client

    def call(self, tool: str, **args: Any) -> Any:
        """Call a tool, leaving out arguments the user did not give (the tool's defaults apply)."""
        return self.client.call(tool, **{k: v for k, v in args.items() if v is not None and v != []})

    def show(self, result: Any, human: Callable[[Any], None]) -> None:
        """Print ``result`` as JSON with ``--json``, else the way ``human`` renders it."""
        emit_json(result) if self.json else human(result)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


_CONNECTION = [
    inspect.Parameter(
        "url",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[str | None, typer.Option("--url", envvar="AGORA_URL", help="Hub URL (default http://127.0.0.1:8080).")],
    ),
    inspect.Parameter(
        "api_key",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[
            str | None,
            typer.Option("--api-key", envvar="AGORA_API_KEY", help="API key (default: <data-dir>/admin.key of a local hub)."),
        ],
    ),
    inspect.Parameter(
        "data_dir",
        inspect.Parameter.KEYWORD_ONLY,
        default=None,
        annotation=Annotated[str | None, typer.Option("--data-dir", envvar="AGORA_DATA_DIR", help="Local hub data directory.")],
    ),

]
_JSON_OUTPUT = inspect.Parameter(
    "json",
    inspect.Parameter.KEYWORD_ONLY,
    default=False,
    annotation=Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")],
)


def hub_command(
    group: typer.Typer, name: str, *, json_option: bool = True, epilog: str | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register ``fn(hub, ...)`` as ``name`` in ``group``, with the connection options (and ``--json``) added.

    Without ``json_option`` the command has no ``--json`` flag of its own and always prints JSON.
    """

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "hub"]

        @functools.wraps(fn)
        def command(*, url: str | None, api_key: str | None, data_dir: str | None, json: bool = True, **kwargs: Any) -> None:
            hub = Hub(url, api_key, data_dir, json)
            try:
                with friendly_errors():
                    fn(hub, **kwargs)
            finally:
                hub.close()

        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + _CONNECTION + ([_JSON_OUTPUT] if json_option else [])
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        group.command(name, epilog=epilog)(command)
        return fn

    return register
