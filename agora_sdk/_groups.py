"""What the generated tool groups (``_tools.py``) stand on: the "not given" marker and the call into the client."""

from __future__ import annotations

import functools
import importlib
from typing import Any

from .wire.common import Output


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


@functools.cache
def wire_model(ref: str) -> type[Output]:
    """``"tasks.Task"`` → the model, its module imported on first use (an agent never pays for categories it does
    not call: building every wire model at import was most of ``import agora_sdk``)."""
    module, _, name = ref.partition(".")
    model: type[Output] = getattr(importlib.import_module(f"agora_sdk.wire.{module}"), name)
    return model


class SyncGroup:
    def __init__(self, client: Any):
        self._client = client

    def _call(self, tool: str, output: str, params: dict[str, Any], *, retry_safe: bool) -> Any:
        return self._client._invoke(tool, wire_model(output), given(params), retry_safe=retry_safe)


class AsyncGroup:
    def __init__(self, client: Any):
        self._client = client

    async def _call(self, tool: str, output: str, params: dict[str, Any], *, retry_safe: bool) -> Any:
        return await self._client._invoke(tool, wire_model(output), given(params), retry_safe=retry_safe)
