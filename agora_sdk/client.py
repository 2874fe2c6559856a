"""``AgoraClient`` (sync) and ``AsyncAgoraClient`` (async): one API, as httpx has.

``client.messaging.send(...)``, ``client.task.claim(...)``, … are generated from the hub's catalog (``_tools.py``)
and return the hub's own wire models. ``client.register(...)`` registers an agent and from then on acts as it.
Connection failures and 503 answers are retried with backoff; a request the hub may already have carried out is
retried only when that is safe (a read-only tool, or one with an ``idempotency_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import pydantic_core
from websockets.asyncio.client import connect as ws_connect_async
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect as ws_connect

from . import config as _config
from ._tools import AsyncTaskTools, AsyncToolGroups, ToolGroups
from .chat import CHAT_PATH, STREAM_HEADERS, EventReader
from .conversations import AsyncConversations, Conversations
from .errors import AgoraError, Unavailable, error_from_body
from .events import StreamEvent, stream_url
from .tls import tls_context
from .wire.agents import Registration
from .wire.chat import ChatEvent
from .wire.common import Output
from .wire.tasks import Chunk

if TYPE_CHECKING:
    from .channel import Channel

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3


def tool_path(tool: str) -> str:
    """``agora.messaging.send`` → ``/agora/messaging/send`` (the REST door's route for every tool)."""
    if not tool.startswith(("agora.", "ext.")):
        tool = "agora." + tool
    return "/" + tool.replace(".", "/")


class RetryPolicy:
    """Exponential backoff with full jitter; decides whether a failed attempt may be made again."""

    def __init__(self, retries: int = DEFAULT_RETRIES, base: float = 0.2, cap: float = 5.0):
        self.retries, self.base, self.cap = retries, base, cap

    def delay(self, attempt: int) -> float:
        return random.uniform(0, min(self.cap, self.base * 2**attempt))

    def after_error(self, attempt: int, exc: httpx.TransportError, retry_safe: bool) -> float | None:
        # A refused connection never reached the hub; anything later may have been carried out.
        never_sent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        if attempt >= self.retries or not (never_sent or retry_safe):
            return None
        return self.delay(attempt)

    def after_response(self, attempt: int, response: httpx.Response) -> float | None:
        """A 429 (rate limited) or 503 (unavailable) was refused before anything ran: always safe to send again,
        after the time the hub asks for (``details.retry_after_seconds``, else ``Retry-After``), else a backoff."""
        if response.status_code not in (429, 503) or attempt >= self.retries:
            return None
        asked = _retry_after(response)
        return min(self.cap, asked * random.uniform(1.0, 1.1)) if asked is not None else self.delay(attempt)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        wait = response.json()["error"]["details"]["retry_after_seconds"]
        if isinstance(wait, (int, float)) and wait >= 0:
            return float(wait)
    except (ValueError, KeyError, TypeError):
        pass  # not the hub's error body: fall back to the Retry-After header
    header = response.headers.get("retry-after", "")
    return float(header) if header.isdigit() else None


class _Base:
    """What both clients share: where the hub is, who we are, and how a call is encoded and decoded."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ):
        self.config = _config.resolve(url, api_key, data_dir)
        self.timeout = timeout
        self.retry = RetryPolicy(retries)
        self.agent_id: str | None = None  # set once ``register`` made this client act as an agent

    @property
    def api_key(self) -> str | None:
        return self.config.api_key

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _request(self, tool: str, args: dict[str, Any]) -> tuple[str, bytes, float]:
        # A long poll must not be cut off by the client's own timeout.
        wait = args.get("wait")
        timeout = self.timeout + (float(wait) if isinstance(wait, (int, float)) else 0.0)
        return tool_path(tool), pydantic_core.to_json(args), timeout

    def _unreachable(self, exc: httpx.TransportError) -> Unavailable:
        return Unavailable(f"cannot reach the hub at {self.config.url}: {exc or type(exc).__name__}")

    def _adopt(self, registration: Registration) -> None:
        """After ``register``, act as the agent: its token replaces the key that registered it."""
        self.agent_id = registration.agent_id
        if registration.agent_token:
            self.config = _config.ClientConfig(self.config.url, registration.agent_token, "registration")

    def _stream_target(self, types: list[str] | None, resume: str | None, visibility_timeout: float | None) -> str:
        return stream_url(self.config.url, types, resume, visibility_timeout)

    def _chat_request(self, message: str, conversation_id: str | None) -> dict[str, Any]:
        """A streamed chat turn's request; it may wait on the hub's language model between events."""
        body = {"message": message, **({"conversation_id": conversation_id} if conversation_id else {})}
        timeout = httpx.Timeout(self.timeout, read=self.timeout * 5)
        return {"method": "POST", "url": CHAT_PATH, "json": body, "headers": {**self._headers(), **STREAM_HEADERS}, "timeout": timeout}


def _result(response: httpx.Response, output: type[Output] | None) -> Any:
    if response.is_success:
        return output.model_validate_json(response.content) if output else response.json()
    try:
        body = response.json()
    except ValueError:
        body = response.text
    raise error_from_body(response.status_code, body)


class AgoraClient(_Base, ToolGroups):
    """Synchronous client: ``AgoraClient().messaging.send("DocWriter", "hello")``."""

    conversations: Conversations

    def __init__(self, url: str | None = None, api_key: str | None = None, **options: Any):
        super().__init__(url, api_key, **options)
        self._http = httpx.Client(base_url=self.config.url, timeout=self.timeout, verify=tls_context())
        self._init_groups()
        self.conversations = Conversations(self)

    def _post(self, tool: str, args: dict[str, Any], retry_safe: bool) -> httpx.Response:
        path, body, timeout = self._request(tool, args)
        attempt = 0
        while True:
            try:
                response = self._http.post(path, content=body, headers=self._json_headers(), timeout=timeout)
                delay = self.retry.after_response(attempt, response)
                if delay is None:
                    return response
            except httpx.TransportError as exc:
                delay = self.retry.after_error(attempt, exc, retry_safe or "idempotency_key" in args)
                if delay is None:
                    raise self._unreachable(exc) from exc
            time.sleep(delay)
            attempt += 1

    def _json_headers(self) -> dict[str, str]:
        return {**self._headers(), "Content-Type": "application/json"}

    def _invoke(self, tool: str, output: type[Output], args: dict[str, Any], *, retry_safe: bool) -> Any:
        return _result(self._post(tool, args, retry_safe), output)

    def call(self, tool: str, /, **args: Any) -> Any:
        """Call any tool by name (``agora.…`` or an imported ``ext.…`` one) and get its result as plain JSON."""
        return _result(self._post(tool, args, retry_safe=False), None)

    def register(self, agent_name: str, **options: Any) -> Registration:
        """Register (or re-register) an agent, then act as it; takes ``agora.agents.register``'s arguments."""
        registration = self.agents.register(agent_name, **options)
        self._adopt(registration)
        return registration

    def chat_stream(self, message: str, conversation_id: str | None = None) -> Iterator[ChatEvent]:
        """One marketplace chat turn, its events as they happen (``agora_sdk.chat``); the last is ``answer``. Never
        retried once sent: the turn may have changed something."""
        try:
            with self._http.stream(**self._chat_request(message, conversation_id)) as response:
                if not response.is_success:
                    response.read()
                    _result(response, None)
                reader = EventReader()
                for line in response.iter_lines():
                    if (event := reader.feed(line)) is not None:
                        yield event
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def events(
        self, types: list[str] | None = None, *, resume: str | None = None, visibility_timeout: float | None = None
    ) -> Iterator[StreamEvent]:
        """Live events over the WebSocket, forever: reconnects with backoff and resumes after the last event taken."""
        attempt = 0
        while True:
            try:
                with ws_connect(
                    self._stream_target(types, resume, visibility_timeout), additional_headers=self._headers()
                ) as ws:
                    for raw in ws:
                        attempt = 0
                        for event in StreamEvent.parse_frame(raw):
                            yield event
                            resume = event.id  # taken: a reconnect starts after it
            except InvalidStatus as exc:
                _raise_refusal(exc)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            time.sleep(self.retry.delay(min(attempt, 5)))
            attempt += 1

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AgoraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTasks(AsyncTaskTools):
    """``client.task``: the catalog's task tools, and ``stream`` (a task's output as it is made)."""

    _client: AsyncAgoraClient

    async def stream(self, task_id: str, *, after: int = 0) -> AsyncIterator[Chunk]:
        """The chunks the task emits, as they come, until it has finished and every one was given (its SSE stream,
        ``/tasks/{task_id}/output/stream``). A broken connection is opened again after the last chunk given: none is
        missed or given twice. ``after``: start after that chunk number."""
        client = self._client
        attempt = 0
        while True:
            with contextlib.suppress(httpx.TransportError):  # a broken connection: opened again below, after the last chunk
                async with client._http.stream(
                    "GET", f"/tasks/{task_id}/output/stream", params={"after": after}, headers=client._headers(),
                    timeout=httpx.Timeout(client.timeout, read=None),
                ) as response:  # fmt: skip
                    if not response.is_success:
                        await response.aread()
                        _result(response, None)  # the hub's refusal, raised as its error
                    reader = EventReader()
                    async for line in response.aiter_lines():
                        if (event := reader.feed(line)) is None:
                            continue
                        attempt = 0
                        if event.event == "end":
                            return
                        chunk = Chunk.model_validate(event.data)
                        after = chunk.seq
                        yield chunk
            await asyncio.sleep(client.retry.delay(min(attempt, 5)))
            attempt += 1


class AsyncAgoraClient(_Base, AsyncToolGroups):
    """Asynchronous client with the same API: ``await AsyncAgoraClient().messaging.send("DocWriter", "hello")``."""

    task: AsyncTasks
    conversations: AsyncConversations

    def __init__(self, url: str | None = None, api_key: str | None = None, **options: Any):
        super().__init__(url, api_key, **options)
        self._http = httpx.AsyncClient(base_url=self.config.url, timeout=self.timeout, verify=tls_context())
        self.channel: Channel | None = None  # an agent runtime's held WebSocket: calls go over it while it is open
        self._init_groups()
        self.task = AsyncTasks(self)
        self.conversations = AsyncConversations(self)

    async def _post(self, tool: str, args: dict[str, Any], retry_safe: bool) -> httpx.Response:
        path, body, timeout = self._request(tool, args)
        attempt = 0
        while True:
            try:
                response = await self._http.post(path, content=body, headers=self._json_headers(), timeout=timeout)
                delay = self.retry.after_response(attempt, response)
                if delay is None:
                    return response
            except httpx.TransportError as exc:
                delay = self.retry.after_error(attempt, exc, retry_safe or "idempotency_key" in args)
                if delay is None:
                    raise self._unreachable(exc) from exc
            await asyncio.sleep(delay)
            attempt += 1

    def _json_headers(self) -> dict[str, str]:
        return {**self._headers(), "Content-Type": "application/json"}

    async def _invoke(self, tool: str, output: type[Output], args: dict[str, Any], *, retry_safe: bool) -> Any:
        if self.channel is not None and self.channel.up.is_set():
            from .channel import TooLarge

            with contextlib.suppress(TooLarge):  # more than the hub takes in one frame: HTTP takes it below
                result = await self.channel.call(tool, args, resend=retry_safe or "idempotency_key" in args)
                return output.model_validate(result)
        return _result(await self._post(tool, args, retry_safe), output)

    async def call(self, tool: str, /, **args: Any) -> Any:
        """Call any tool by name (``agora.…`` or an imported ``ext.…`` one) and get its result as plain JSON."""
        return _result(await self._post(tool, args, retry_safe=False), None)

    async def register(self, agent_name: str, **options: Any) -> Registration:
        """Register (or re-register) an agent, then act as it; takes ``agora.agents.register``'s arguments."""
        registration = await self.agents.register(agent_name, **options)
        self._adopt(registration)
        return registration

    async def chat_stream(self, message: str, conversation_id: str | None = None) -> AsyncIterator[ChatEvent]:
        """One marketplace chat turn, its events as they happen (``agora_sdk.chat``); the last is ``answer``."""
        try:
            async with self._http.stream(**self._chat_request(message, conversation_id)) as response:
                if not response.is_success:
                    await response.aread()
                    _result(response, None)
                reader = EventReader()
                async for line in response.aiter_lines():
                    if (event := reader.feed(line)) is not None:
                        yield event
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    async def events(
        self, types: list[str] | None = None, *, resume: str | None = None, visibility_timeout: float | None = None
    ) -> AsyncIterator[StreamEvent]:
        """Live events over the WebSocket, forever: reconnects with backoff and resumes after the last event taken."""
        attempt = 0
        while True:
            try:
                async with ws_connect_async(
                    self._stream_target(types, resume, visibility_timeout), additional_headers=self._headers()
                ) as ws:
                    async for raw in ws:
                        attempt = 0
                        for event in StreamEvent.parse_frame(raw):
                            yield event
                            resume = event.id  # taken: a reconnect starts after it
            except InvalidStatus as exc:
                _raise_refusal(exc)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass
            await asyncio.sleep(self.retry.delay(min(attempt, 5)))
            attempt += 1

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncAgoraClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _raise_refusal(exc: InvalidStatus) -> None:
    """The hub refused the stream: a bad key or filter is final; a hub starting up (503) is retried."""
    status = exc.response.status_code
    if status == 503 or status >= 502:
        return
    try:
        body = pydantic_core.from_json(exc.response.body or b"{}")
    except ValueError:
        body = {}
    raise error_from_body(status, body) from exc


__all__ = ["AgoraClient", "AsyncAgoraClient", "AgoraError", "RetryPolicy", "tool_path"]
