"""HTTP clients for the hub's REST door: ``AgoraClient`` (sync) and ``AsyncAgoraClient`` share one API."""

from __future__ import annotations

import os
from typing import Any

import httpx

from . import config as _config
from .errors import AgoraError, Unavailable, error_from_body

DEFAULT_TIMEOUT = 30.0


def _path(tool: str) -> str:
    if not tool.startswith("agora."):
        tool = "agora." + tool
    return "/" + tool.replace(".", "/")


def _result(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if response.is_success:
        return body
    raise error_from_body(response.status_code, body)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class _Base:
    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.config = _config.resolve(url, api_key, data_dir)
        self.timeout = timeout


class AgoraClient(_Base):
    """Synchronous client. ``client.call("agora.agents.register", agent_name=...)`` calls any tool."""

    def __init__(self, url: str | None = None, api_key: str | None = None, **kwargs: Any):
        super().__init__(url, api_key, **kwargs)
        self._http = httpx.Client(base_url=self.config.url, headers=_headers(self.config.api_key), timeout=self.timeout)

    def call(self, tool: str, **args: Any) -> Any:
        try:
            return _result(self._http.post(_path(tool), json=args))
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the hub at {self.config.url}: {exc}") from exc

    def get(self, path: str, **params: Any) -> Any:
        try:
            return _result(self._http.get(path, params=params))
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the hub at {self.config.url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgoraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncAgoraClient(_Base):
    """Asynchronous client with the same API as :class:`AgoraClient`."""

    def __init__(self, url: str | None = None, api_key: str | None = None, **kwargs: Any):
        super().__init__(url, api_key, **kwargs)
        self._http = httpx.AsyncClient(base_url=self.config.url, headers=_headers(self.config.api_key), timeout=self.timeout)

    async def call(self, tool: str, **args: Any) -> Any:
        try:
            return _result(await self._http.post(_path(tool), json=args))
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the hub at {self.config.url}: {exc}") from exc

    async def get(self, path: str, **params: Any) -> Any:
        try:
            return _result(await self._http.get(path, params=params))
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the hub at {self.config.url}: {exc}") from exc

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAgoraClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["AgoraClient", "AsyncAgoraClient", "AgoraError"]
