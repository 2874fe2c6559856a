"""What the generated tool groups (``_tools.py``) stand on: the "not given" marker and the call into the client."""

from __future__ import annotations

from typing import Any, TypeVar

from .wire.common import Output

OutputT = TypeVar("OutputT", bound=Output)


class Unset:
    """A parameter the caller left out: it is not sent, so the hub's default applies."""

    _instance: Unset | None = None

    def __new__(cls) -> Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET = Unset()


def given(params: dict[str, Any]) -> dict[str, Any]:
    """The arguments a generated method was actually called with."""
    return {k: v for k, v in params.items() if k != "self" and v is not UNSET}


class SyncGroup:
    def __init__(self, client: Any):
        self._client = client

    def _call(self, tool: str, output: type[OutputT], params: dict[str, Any], *, retry_safe: bool) -> OutputT:
        return self._client._invoke(tool, output, given(params), retry_safe=retry_safe)


class AsyncGroup:
    def __init__(self, client: Any):
        self._client = client

    async def _call(self, tool: str, output: type[OutputT], params: dict[str, Any], *, retry_safe: bool) -> OutputT:
        return await self._client._invoke(tool, output, given(params), retry_safe=retry_safe)
