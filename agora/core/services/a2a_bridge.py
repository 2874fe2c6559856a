"""The bridge outward: an agent registered with ``a2a_card_url`` stands for a remote A2A agent, and the hub does its
work (tasks, and messages sent to it) by calling that agent as an A2A client (official ``a2a-sdk``; JSON-RPC or HTTP+JSON, as its card offers).

Every replica runs a ``Bridge``. For each such agent it keeps a worker that claims the agent's tasks exactly as an
agent process would (through the catalog, as that agent: leases, retries, events and logs are the task queue's),
sends each to the remote agent as an A2A message and turns the answer into the task's outcome: an ``a2a.message`` turn
(a caller of the agent's own A2A front on this hub) mirrors the remote task's states, messages and artifacts; any other
task completes with the remote result (status message, artifacts, the remote task id) or fails with its reason. A
remote agent that is down, too slow or answers garbage fails the task with that reason, and the queue retries it as
the task's ``max_attempts`` allow. A message to the agent is sent on as an A2A message and the remote answer comes back
to its sender as the reply (``correlation.reply_to``); it is acked only then. Cards are fetched at registration and
refreshed every ``CARD_REFRESH``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Coroutine
from datetime import datetime, timedelta
from typing import Any

import httpx
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError

from a2a.client import A2AClientError, Client, ClientConfig, ClientFactory
from a2a.client.card_resolver import parse_agent_card
from a2a.utils.constants import VERSION_HEADER
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import A2AError
from agora.core.auth import DEFAULT_SCOPES, Principal, PrincipalKind
from agora.core.context import Hub
from agora.core.egress import Egress, display, http_url, unreachable
from agora.core.exception_groups import innermost
from agora.core.ids import new_id
from agora.core.services.a2a import merged
from agora.store.ops import a2a as a2a_ops
from agora.store.ops import agents as agent_ops
from agora_sdk.errors import AgoraError, InvalidArgument
from agora_sdk.wire.common import redact_url

log = logging.getLogger("agora.a2a.bridge")

CARD_TIMEOUT = 10.0  # seconds to fetch a card
CALL_TIMEOUT = 120.0  # seconds one remote task may take, streamed or polled, before the attempt fails
LEASE_SECONDS = CALL_TIMEOUT + 30
POLL_SECONDS = 1.0  # a remote agent without streaming is asked for its task's state this often
SYNC_SECONDS = 5.0  # remote agents registered on other replicas are found this often
CARD_REFRESH = timedelta(minutes=10)
CONCURRENCY = 8  # tasks (and messages) of one remote agent in flight at once
MAX_DELIVERIES = 3  # a message the remote agent cannot take is retried this often, then answered with a failure
CANCEL_RECHECK = 5.0  # a task being done is looked at this often for a cancellation whose wake-up was lost
TURN = a2a_ops.TURN
ENDED = {"TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED", "TASK_STATE_REJECTED", "TASK_STATE_INPUT_REQUIRED", "TASK_STATE_AUTH_REQUIRED"}


class RemoteFailure(Exception):
    """The remote agent could not be reached or did not answer in A2A: the attempt fails and may be retried."""


# What the SDK's client raises when the remote could not be reached or its answer is not A2A (A2AClientError is an
# A2AError, but not one the remote agent answered: those, such as InvalidParamsError, are its verdict).
UNREACHABLE = (A2AClientError, httpx.HTTPError, ValueError, KeyError)


def card_location(url: str) -> str:
    return url if url.endswith(".json") else url.rstrip("/") + "/.well-known/agent-card.json"


async def remote_profile(egress: Egress, url: str, token: str | None, now: datetime) -> dict[str, Any]:
    """The remote agent's card (A2A 1.0 JSON, 0.3 cards converted), or a 400 naming the field: the same words whatever
    kept the card from being had (a refused address, a closed port, a timeout, something that is not an A2A agent)."""
    try:
        http_url(url)
    except ValueError as exc:
        raise InvalidArgument(f"a2a_card_url: {exc}", details={"field": "a2a_card_url"}) from None
    # A 1.0 client names its version (a 0.3 agent ignores it and sends its 0.3 card, which the SDK reads as well).
    headers = {VERSION_HEADER: "1.0", **({"Authorization": f"Bearer {token}"} if token else {})}
    location = card_location(url)
    try:
        async with egress.client(timeout=CARD_TIMEOUT, headers=headers) as http:
            response = await http.get(location)
            response.raise_for_status()
            card = MessageToDict(parse_agent_card(response.json()))
        if not card.get("supportedInterfaces"):
            raise ValueError("the card offers no interface to call")
    except (httpx.HTTPError, ParseError, ValueError, AttributeError, TypeError, KeyError) as exc:
        log.info("no A2A agent card at %s: %s: %s", display(location), type(innermost(exc)).__name__, innermost(exc))
        why = f"{unreachable(url, 'an A2A agent')}: no A2A agent card could be read at {redact_url(location)}"
        raise InvalidArgument(why, details={"field": "a2a_card_url"}) from None
    return {"card_url": url, "card": card, "fetched_at": now.isoformat()}


def capabilities_of(card: dict[str, Any]) -> list[str]:
    """Capabilities from the card's skills (their ids, made capability-shaped)."""
    names = [re.sub(r"[^A-Za-z0-9_.:/-]", "-", s.get("id", ""))[:64].strip("-") for s in card.get("skills", [])]
    return list(dict.fromkeys(n for n in names if n))[:100]


class Bridge:
    """Keeps one ``RemoteWorker`` per agent that stands for a remote A2A agent."""

    def __init__(self, hub: Hub):
        self.hub = hub
        self.workers: dict[str, tuple[asyncio.Task[None], tuple[str, str, bool]]] = {}  # agent id -> (worker, its _identity)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self._sync()
                except Exception:  # noqa: BLE001 - retried at the next round
                    log.exception("bridge: reading the remote agents failed")
                await asyncio.sleep(SYNC_SECONDS)
        finally:
            for worker, _ in self.workers.values():
                worker.cancel()
            await asyncio.gather(*(w for w, _ in self.workers.values()), return_exceptions=True)

    async def _sync(self) -> None:
        agents = {a["agent_id"]: a for a in await self.hub.store.read(agent_ops.remote)}
        for agent_id in list(self.workers):
            worker, seen = self.workers[agent_id]
            if agent_id not in agents or _identity(agents[agent_id]) != seen or worker.done():
                worker.cancel()  # gone, pointed elsewhere, paused or resumed: a fresh worker (or none)
                del self.workers[agent_id]
        for agent_id, agent in agents.items():
            if agent_id not in self.workers and agent["status"] != "paused":
                try:
                    worker = RemoteWorker(self.hub, agent)
                except (KeyError, TypeError, ValueError):  # a card this hub cannot read: the others still get served
                    log.exception("bridge: remote agent %s has an unreadable card", agent["agent_name"])
                    continue
                task = asyncio.create_task(worker.run(), name=f"a2a-bridge-{agent_id}")
                self.workers[agent_id] = (task, _identity(agent))


def _identity(agent: dict[str, Any]) -> tuple[str, str, bool]:
    return agent["a2a_remote"]["card_url"], agent["status"], set_by_admin(agent["a2a_remote"])


def set_by_admin(remote: dict[str, Any]) -> bool:
    """Whether the admin set this remote agent's card URL (its egress is then the admin's)."""
    return bool(remote.get("set_by_admin", False))


class RemoteWorker:
    """Does one remote agent's tasks: claims them as that agent, asks the remote agent, reports the outcome."""

    def __init__(self, hub: Hub, agent: dict[str, Any]):
        self.hub = hub
        self.agent = agent
        self.principal = Principal(
            PrincipalKind.agent, key_id=f"bridge:{agent['agent_id']}", tenant_id=agent["tenant_id"],
            scopes=frozenset(DEFAULT_SCOPES), agent_id=agent["agent_id"], agent_status=agent["status"],
        )  # fmt: skip
        self.card = parse_agent_card(agent["a2a_remote"]["card"])
        self.fetched = datetime.fromisoformat(agent["a2a_remote"]["fetched_at"])
        self.egress = hub.egress.acting_for(admin=set_by_admin(agent["a2a_remote"]))

    async def call(self, tool: str, **args: Any) -> dict[str, Any]:
        _, output, _ = await self.hub.catalog.call(self.hub, self.principal, tool, args, new_id("req"))
        return output.model_dump(mode="json")

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.agent['a2a_token']}"} if self.agent["a2a_token"] else {}
        async with self.egress.client(timeout=CALL_TIMEOUT, headers=headers) as http:
            self.http = http
            async with asyncio.TaskGroup() as group:
                group.create_task(self._tasks())
                group.create_task(self._messages())

    async def _tasks(self) -> None:
        slots = asyncio.Semaphore(CONCURRENCY)
        running: set[asyncio.Task[None]] = set()
        while True:
            await slots.acquire()
            try:
                await self._refresh_card()
                claimed = await self.call("agora.task.claim", wait=20, lease_seconds=LEASE_SECONDS)
            except AgoraError as exc:
                slots.release()
                log.warning("bridge %s: claim failed (%s)", self.agent["agent_name"], exc.message)
                await asyncio.sleep(1)
                continue
            if claimed["task"] is None:
                slots.release()
                continue
            work = asyncio.create_task(self._do(claimed["task"], claimed["lease"]["token"]))
            running.add(work)
            work.add_done_callback(lambda t: (running.discard(t), slots.release()))

    async def _messages(self) -> None:
        """Messages sent to the agent inside Agora go to the remote agent; its answer comes back as the reply. One
        that cannot be delivered stays unacked and comes back after the visibility timeout (MAX_DELIVERIES at most)."""
        while True:
            try:
                inbox = await self.call("agora.messaging.receive", wait=20, limit=CONCURRENCY, visibility_timeout=LEASE_SECONDS)
            except AgoraError as exc:
                log.warning("bridge %s: receive failed (%s)", self.agent["agent_name"], exc.message)
                await asyncio.sleep(1)
                continue
            await asyncio.gather(*(self._relay(m) for m in inbox["messages"]))

    async def _relay(self, message: dict[str, Any]) -> None:
        conversation = (message.get("correlation") or {}).get("conversation_id")
        content = message["content"]
        a2a_message = {
            "messageId": new_id("msg"), "role": "ROLE_USER", "parts": parts(content),
            "metadata": {k: message.get(k) for k in ("message_id", "from_agent", "message_type", "performative", "intent")},
        }  # fmt: skip
        if conversation:
            a2a_message["contextId"] = conversation
        remote = RemoteTask()
        failure = None
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                async for event in self._ask(pb.SendMessageRequest(message=ParseDict(a2a_message, pb.Message()))):
                    remote.apply(event)
        except (RemoteFailure, TimeoutError) as exc:
            if message["delivery_count"] < MAX_DELIVERIES:
                log.warning("bridge %s: message %s not delivered (%s); it comes back", self.agent["agent_name"], message["message_id"], exc)
                return
            failure = f"remote A2A agent {self.agent['agent_name']} did not answer: {exc or 'no answer in time'}"
        except A2AError as exc:
            failure = f"remote A2A agent {self.agent['agent_name']} refused the message: {exc.message}"
        with contextlib.suppress(AgoraError):
            if message["from_agent"].startswith("agent_"):
                reply = {"error": failure} if failure else _answer(remote)
                performative = "failure" if failure or reply.get("state") not in (None, "TASK_STATE_COMPLETED") else "inform"
                correlation = {"reply_to": message["message_id"], "conversation_id": conversation}
                await self.call("agora.messaging.send", to_agent=message["from_agent"], content=reply, performative=performative,
                                message_type=message["message_type"], correlation=correlation)  # fmt: skip
            await self.call("agora.messaging.ack", message_ids=[message["message_id"]])

    async def _refresh_card(self) -> None:
        now = self.hub.clock.now()
        if now - self.fetched < CARD_REFRESH:
            return
        self.fetched = now  # one try per period, whatever its outcome
        try:
            profile = await remote_profile(self.egress, self.agent["a2a_remote"]["card_url"], self.agent["a2a_token"], now)
        except InvalidArgument as exc:
            log.warning("bridge %s: card refresh failed (%s); keeping the last card", self.agent["agent_name"], exc.message)
            return
        self.card = parse_agent_card(profile["card"])
        await self.call("agora.agents.update", capabilities=capabilities_of(profile["card"]) or self.agent["capabilities"])

    # -- one task ---------------------------------------------------------------------------------------------------

    async def _do(self, task: dict[str, Any], lease: str) -> None:
        turn = task["task_type"] == TURN
        remote = RemoteTask()
        try:
            request = await self._request(task)
            if not await self._unless_cancelled(task["task_id"], self._exchange(task, lease, request, remote)):
                await self._cancel_remotely(remote)
                return
            if not remote.ended:
                raise RemoteFailure("its answer stopped before the task finished")
            if not turn:
                await self._settle(task, lease, remote)
        except (RemoteFailure, TimeoutError) as exc:
            why = f"remote A2A agent {self.agent['agent_name']}: {exc or 'no answer in time'}"
            with contextlib.suppress(AgoraError):
                await self.call("agora.task.update", task_id=task["task_id"], lease_token=lease, status="failed", notes=why[:4000], retry=True)
        except A2AError as exc:  # the remote agent refused the message: its verdict, not retried
            why = f"remote A2A agent {self.agent['agent_name']} refused the task: {type(exc).__name__}: {exc.message}"
            with contextlib.suppress(AgoraError):
                await self.call("agora.task.update", task_id=task["task_id"], lease_token=lease, status="failed", notes=why[:4000])
        except AgoraError as exc:  # the task moved on meanwhile (cancelled, lease lost): nothing to report
            log.info("bridge %s: task %s: %s", self.agent["agent_name"], task["task_id"], exc.message)

    async def _exchange(self, task: dict[str, Any], lease: str, request: pb.SendMessageRequest, remote: RemoteTask) -> None:
        """Send the task's message and follow the remote answer to its end (an A2A caller's turn: mirrored as it goes)."""
        async with asyncio.timeout(CALL_TIMEOUT):
            async for event in self._ask(request):
                remote.apply(event)
                if task["task_type"] == TURN:
                    await self._mirror(task, lease, event)

    async def _unless_cancelled(self, task_id: str, work: Coroutine[Any, Any, None]) -> bool:
        """Do ``work`` (True), unless the task is cancelled in Agora meanwhile (False: the work is stopped)."""
        doing = asyncio.ensure_future(work)
        watching = asyncio.create_task(self._until_cancelled(task_id))
        try:
            await asyncio.wait({doing, watching}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for side in (watching, doing):
                side.cancel()  # no-op for the side that finished
            await asyncio.gather(watching, doing, return_exceptions=True)
        if not doing.cancelled():
            doing.result()  # the work's own failure, raised
            return True
        return False

    async def _until_cancelled(self, task_id: str) -> None:
        """Return when the task is cancelled (by its creator, an admin, or its A2A caller on this hub)."""
        await self.hub.wakeups.until(
            [f"task:{task_id}"], lambda: self.call("agora.task.get", task_id=task_id), lambda t: t["status"] == "cancelled", CANCEL_RECHECK
        )

    async def _cancel_remotely(self, remote: RemoteTask) -> None:
        """Cancel the remote agent's task of a task cancelled here; one it cannot cancel (ended, refused) is left be."""
        if remote.task is None or remote.task["status"]["state"] in ENDED:
            return
        async with self._client() as client:
            try:
                await _call(client.cancel_task(pb.CancelTaskRequest(id=remote.task["id"])))
            except (RemoteFailure, A2AError) as exc:
                log.info("bridge %s: remote task %s not cancelled: %s", self.agent["agent_name"], remote.task["id"], exc)

    async def _request(self, task: dict[str, Any]) -> pb.SendMessageRequest:
        """The A2A message for a task: an A2A caller's own message (continuing the remote task it started), or the
        task's payload in the parts ``parts`` makes of it."""
        payload = task["payload"]
        if task["task_type"] == TURN:
            message = dict(payload["message"])
            mine = await self.hub.store.read(a2a_ops.get, payload["a2a_task_id"])
            remote = mine["metadata"].get("remote")
            message.pop("taskId", None)
            message.pop("contextId", None)
            if remote:
                message["taskId"], message["contextId"] = remote["task_id"], remote["context_id"]
        else:
            message = {"messageId": new_id("msg"), "role": "ROLE_USER", "parts": parts(payload), "metadata": {"agora_task_id": task["task_id"], "task_type": task["task_type"]}}
        message.setdefault("messageId", new_id("msg"))
        return pb.SendMessageRequest(message=ParseDict(message, pb.Message()))

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Client]:
        """An SDK client of the remote agent, on the binding its card offers (JSON-RPC or HTTP+JSON)."""
        config = ClientConfig(httpx_client=self.http, supported_protocol_bindings=["JSONRPC", "HTTP+JSON"], streaming=self.card.capabilities.streaming)
        client = ClientFactory(config).create(self.card)
        try:
            yield client
        finally:
            await client.close()

    async def _ask(self, request: pb.SendMessageRequest) -> AsyncIterator[dict[str, Any]]:
        """The remote answer as StreamResponse JSON events: streamed if the card offers it, else sent and polled."""
        streaming = self.card.capabilities.streaming
        async with self._client() as client:
            last: dict[str, Any] | None = None
            async for event in _remote(client.send_message(request)):
                last = MessageToDict(event)
                yield last
            task = (last or {}).get("task")
            started = time.monotonic()
            while task is not None and task["status"]["state"] not in ENDED and not streaming:
                await asyncio.sleep(min(POLL_SECONDS, max(0.0, CALL_TIMEOUT - (time.monotonic() - started))))
                task = MessageToDict(await _call(client.get_task(pb.GetTaskRequest(id=task["id"]))))
                yield {"task": task}

    async def _settle(self, task: dict[str, Any], lease: str, remote: RemoteTask) -> None:
        """A plain task completes with the remote result, or fails with the remote agent's verdict (not retried)."""
        if remote.message is not None:
            result = {"message": remote.message, "text": _text(remote.message)}
            await self.call("agora.task.update", task_id=task["task_id"], lease_token=lease, status="completed", result=result)
            return
        assert remote.task is not None
        state, note = remote.task["status"]["state"], _text(remote.task["status"].get("message"))
        result = {"remote_task_id": remote.task["id"], "state": state, "text": note, "artifacts": remote.task.get("artifacts", [])}
        if state == "TASK_STATE_COMPLETED":
            await self.call("agora.task.update", task_id=task["task_id"], lease_token=lease, status="completed", result=result)
            return
        why = f"remote A2A agent {self.agent['agent_name']}: {state.removeprefix('TASK_STATE_').lower()}: {note}".strip(": ")
        await self.call("agora.task.update", task_id=task["task_id"], lease_token=lease, status="failed", notes=why[:4000], result=result)

    async def _mirror(self, task: dict[str, Any], lease: str, event: dict[str, Any]) -> None:
        """For an A2A caller's turn: the remote task's states, messages and artifacts, step by step."""
        answer = {"task_id": task["task_id"], "lease_token": lease}
        if "message" in event:
            await self.call("agora.a2a.update", **answer, reply=True, message=_ours(event["message"]))
            return
        remote = event.get("task") or event.get("statusUpdate") or {}
        for artifact in (event.get("task") or {}).get("artifacts", []):
            await self.call("agora.a2a.update", **answer, artifact=artifact)
        if "artifactUpdate" in event:
            update = event["artifactUpdate"]
            await self.call("agora.a2a.update", **answer, artifact=update["artifact"], append=update.get("append", False), last_chunk=update.get("lastChunk", False))
            return
        status = remote.get("status") or {}
        state = status.get("state", "").removeprefix("TASK_STATE_").lower()
        if state in ("", "submitted"):
            return
        message = _ours(status["message"]) if status.get("message") else None
        remote_ids = {"task_id": remote.get("id") or remote.get("taskId"), "context_id": remote.get("contextId")}
        await self.call("agora.a2a.update", **answer, state=state, message=message, metadata={"remote": remote_ids})


class RemoteTask:
    """The remote agent's answer as its events arrive: its task (snapshot, then status and artifact updates), or a
    message."""

    def __init__(self) -> None:
        self.task: dict[str, Any] | None = None
        self.message: dict[str, Any] | None = None

    @property
    def ended(self) -> bool:
        return self.message is not None or (self.task is not None and self.task["status"]["state"] in ENDED)

    def apply(self, event: dict[str, Any]) -> None:
        if "message" in event:
            self.message = event["message"]
        elif "task" in event:
            self.task = event["task"]
        elif self.task is not None and "statusUpdate" in event:
            self.task = {**self.task, "status": event["statusUpdate"]["status"]}
        elif self.task is not None and "artifactUpdate" in event:
            update = event["artifactUpdate"]
            self.task = {**self.task, "artifacts": merged(self.task.get("artifacts", []), update["artifact"], update.get("append", False))}


async def _remote(events: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The remote's events, its failures as RemoteFailure (an A2A error it answered is passed on as such)."""
    try:
        async for event in events:
            yield event
    except UNREACHABLE as exc:
        raise _failure(exc) from None


async def _call(request: Any) -> Any:
    try:
        return await request
    except UNREACHABLE as exc:
        raise _failure(exc) from None


def _failure(exc: BaseException) -> RemoteFailure:
    """Why a call failed, for the task's notes: a connection that failed says only that (logged with the reason), so
    a task cannot tell a closed port from a refused address or a timeout."""
    cause: BaseException | None = innermost(exc)
    for _ in range(8):  # down the chain of causes, to the error of the connection if there is one
        if cause is None or isinstance(cause, httpx.TransportError):
            break
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, httpx.TransportError):
        log.info("bridge: a remote A2A agent could not be reached: %s: %s", type(cause).__name__, cause)
        return RemoteFailure("could not reach it")
    return RemoteFailure(f"{type(innermost(exc)).__name__}: {innermost(exc)}")


def _answer(remote: RemoteTask) -> dict[str, Any]:
    """A remote answer as a reply's content: the message's text and data, or the task's state, text and artifacts."""
    if remote.message is not None:
        data = [p["data"] for p in remote.message.get("parts", []) if "data" in p]
        return {"text": _text(remote.message), **({"data": data[0] if len(data) == 1 else data} if data else {})}
    task = remote.task or {"status": {}}
    return {"state": task["status"].get("state"), "text": _text(task["status"].get("message")), "artifacts": task.get("artifacts", [])}


def parts(content: Any) -> list[dict[str, Any]]:
    """What a message's content or a task's payload becomes in A2A, the one rule for both: a string, or an object
    that is only ``{"text": ...}``, is a text part; any other object a data part (another value is wrapped as
    ``{"content": value}``, since a data part holds an object)."""
    if isinstance(content, dict) and set(content) == {"text"} and isinstance(content["text"], str):
        content = content["text"]
    if isinstance(content, str):
        return [{"text": content}]
    return [{"data": content if isinstance(content, dict) else {"content": content}}]


def _text(message: dict[str, Any] | None) -> str:
    return " ".join(p.get("text", "") for p in (message or {}).get("parts", [])).strip()


def _ours(message: dict[str, Any]) -> dict[str, Any]:
    """A remote agent's message as this hub's task's own (the hub sets the ids and the role)."""
    return {k: v for k, v in message.items() if k in ("parts", "metadata", "extensions", "referenceTaskIds")}
