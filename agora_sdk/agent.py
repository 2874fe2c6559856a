"""``Agent``: declare a name, capabilities and handlers, then ``run()``.

The runtime registers (idempotently: the same name is the same agent), heartbeats, takes tasks under leases it
renews while a handler runs, completes a task with the handler's return value or fails it with the exception text
(back to the queue while attempts remain), takes messages and acks each only after its handler returned, runs at
most ``concurrency`` task handlers and as many message handlers at once, rides out a hub restart (every loop retries
with backoff, the stream resumes where it stopped) and stops gracefully on SIGINT/SIGTERM.

By default everything goes over one held WebSocket (``channel.py``): the hub pushes messages and tasks — as many
tasks as the runtime has free slots, each slot's credit given back when its handler returns — and outcomes, lease
renewals, acks, A2A updates and the handlers' own calls go back on it. A hub or proxy that refuses the WebSocket
sends the runtime to HTTP: claims parked in ``claim_batch(wait=…)`` and messages from ``receive(wait=…)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ._groups import wire_model
from .channel import Channel, ChannelRefused
from .client import AsyncAgoraClient, RetryPolicy
from .errors import AgoraError, Unavailable
from .events import StreamEvent
from .wire.messaging import Message, MessageReceipt
from .wire.tasks import Claim, Lease, Task

log = logging.getLogger("agora_sdk.agent")

MESSAGE_TYPES = ["message_received", "broadcast_message", "topic_message"]
CLAIM_WAIT = 20.0  # seconds a parked claim waits for work before asking again
MAX_CLAIM = 100  # tasks one claim takes at most (agora.task.claim_batch's limit)
MAX_REPORT = 100  # task outcomes one report carries at most (agora.task.update_batch's limit)
MAX_ACK = 1000  # message ids one ack carries at most (agora.messaging.ack's limit)

T = TypeVar("T")
Handler = Callable[[Any], Any]


class _Coalescer(Generic[T]):
    """Items handed in while a call is on its way go together in the next one, so many short handlers cost few round
    trips and none waits for a timer. ``send`` takes a batch and says why each item changed nothing (None where it
    did); ``put`` waits for its item's answer."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[str | None]]], most: int):
        self._send = send
        self._most = most
        self._pending: list[tuple[T, asyncio.Future[str | None]]] = []
        self._sending: asyncio.Task[None] | None = None

    async def put(self, item: T) -> str | None:
        answered = asyncio.get_running_loop().create_future()
        self._pending.append((item, answered))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._drain())
        return await answered

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self._most], self._pending[self._most :]
            try:
                errors = await self._send([item for item, _ in batch])
            except BaseException as exc:  # the handlers waiting on this batch hear why it failed
                for _, answered in batch:
                    if not answered.done():
                        answered.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for error, (_, answered) in zip(errors, batch):
                if not answered.done():
                    answered.set_result(error)


class _Slots:
    """Handler slots: taken as a group once one is free (a claim or receive asks for that many), or every free one
    at once (credit for a new channel connection); given back as handlers return."""

    def __init__(self, count: int):
        self.free = count
        self._freed = asyncio.Event()

    async def take(self, most: int) -> int:
        while self.free == 0:
            self._freed.clear()
            await self._freed.wait()
        taken = min(self.free, most)
        self.free -= taken
        return taken

    def take_free(self) -> int:
        taken, self.free = self.free, 0
        return taken

    def give(self, count: int = 1) -> None:
        self.free += count
        if count:
            self._freed.set()


class _Bridge:
    """Lets the helpers on a task or message be awaited in async handlers and called plainly in sync ones."""

    def __init__(self, agent: Agent):
        self._agent = agent

    def _run(self, coro: Coroutine[Any, Any, T]) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a sync handler, in a worker thread: run it on the agent's loop and wait
            return asyncio.run_coroutine_threadsafe(coro, self._agent.loop).result()
        return coro


class IncomingMessage(_Bridge):
    """A message handed to an ``on_message`` handler: the wire ``Message``'s fields, plus ``reply``."""

    def __init__(self, agent: Agent, message: Message):
        super().__init__(agent)
        self.message = message

    def __getattr__(self, name: str) -> Any:
        return getattr(self.message, name)

    def reply(self, content: Any, **options: Any) -> Awaitable[MessageReceipt] | MessageReceipt:
        """Answer the sender in the same conversation (``correlation.reply_to`` is this message)."""
        conversation = (self.message.correlation or {}).get("conversation_id")
        options.setdefault("correlation", {"reply_to": self.message.message_id, "conversation_id": conversation})
        options.setdefault("performative", "inform")
        return self._run(self._agent.client.messaging.send(self.message.from_agent, content, **options))


class TaskOutput:
    """A run's output on its way to the hub: chunks go in order, one ``agora.task.emit`` in flight at a time, each
    taking every chunk that came meanwhile (so a handler emitting tokens one by one does not pay a round trip each)."""

    BACKLOG = 5000  # chunks waiting at most; past that, ``emit`` waits for them to go

    def __init__(self, run: TaskRun):
        self._run = run
        self._pending: list[dict[str, Any]] = []
        self._sending: asyncio.Task[None] | None = None
        self.error: AgoraError | None = None

    async def add(self, chunk: dict[str, Any]) -> None:
        if self.error is not None:
            raise self.error
        self._pending.append(chunk)
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send())
        if len(self._pending) > self.BACKLOG:
            await self.flush()

    async def flush(self) -> None:
        """Wait until every chunk emitted so far is stored; raise why not (e.g. the lease was lost)."""
        while self._sending is not None and not self._sending.done():
            await asyncio.shield(self._sending)
        if self.error is not None:
            raise self.error

    async def _send(self) -> None:
        run = self._run
        while self._pending:
            batch, self._pending = self._pending[:500], self._pending[500:]
            args = {"task_id": run.task.task_id, "lease_token": run.lease.token, "chunks": batch}
            try:
                await run._agent._invoke("agora.task.emit", "tasks.Emitted", args)
            except AgoraError as exc:  # not stored, nor what follows: the handler hears it at its next emit
                self.error = exc
                self._pending.clear()


class TaskRun(_Bridge):
    """A claimed task handed to an ``on_task`` handler: the wire ``Task``'s fields, plus ``progress`` and ``emit``."""

    def __init__(self, agent: Agent, task: Task, lease: Lease):
        super().__init__(agent)
        self.task = task
        self.lease = lease
        self.output = TaskOutput(self)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.task, name)

    def progress(self, percent: int, notes: str | None = None) -> Awaitable[Task] | Task:
        """Report progress (0–100); it also renews the lease."""
        return self._run(self._agent._renew(self, percent, notes))

    def emit(self, text: str | None = None, *, data: Any = None) -> Awaitable[None] | None:
        """Output while the task runs — text (an LLM's next tokens, a log line) or ``data`` (any JSON) — in order,
        to whoever watches it (``client.task.stream``, the console's task page). Chunks travel in batches while the
        handler goes on; its result is reported only once every chunk before it is stored."""
        return self._run(self.output.add({"text": text} if text is not None else {"data": data}))


class A2ATurn(TaskRun):
    """One turn of an A2A task, handed to an ``on_a2a`` handler: the caller's ``message`` (``text`` joins its text
    parts), the whole ``history``, and helpers that answer it (``working``, ``artifact``, ``input_required``,
    ``complete``, ``fail``, ``reject``, ``reply``). A handler that returns without ending the turn completes the task,
    with the return value as its status message (a string) or artifact (anything else)."""

    def __init__(self, agent: Agent, task: Task, lease: Lease):
        super().__init__(agent, task, lease)
        self.ended = False

    @property
    def a2a_task_id(self) -> str:
        return str(self.task.payload["a2a_task_id"])

    @property
    def context_id(self) -> str:
        return str(self.task.payload["context_id"])

    @property
    def message(self) -> dict[str, Any]:
        return dict(self.task.payload["message"])

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.task.payload["history"])

    @property
    def message_id(self) -> str:
        return str(self.message.get("messageId", ""))

    @property
    def text(self) -> str:
        return "".join(part.get("text", "") for part in self.message.get("parts", []))

    def working(self, text: str | None = None) -> Any:
        return self._update(state="working", message=_message(text))

    def artifact(
        self, text: str | None = None, *, data: Any = None, parts: list[dict[str, Any]] | None = None, name: str | None = None,
        artifact_id: str | None = None, append: bool = False, last_chunk: bool = False,
    ) -> Any:
        """Add an artifact (text, data, or A2A ``parts``), or extend the one with ``artifact_id`` when ``append``."""
        artifact: dict[str, Any] = {"parts": parts or _parts(text, data)}
        if name is not None:
            artifact["name"] = name
        if artifact_id is not None:
            artifact["artifactId"] = artifact_id
        return self._update(artifact=artifact, append=append, last_chunk=last_chunk)

    def input_required(self, text: str) -> Any:
        """Ask the caller for more; the task waits for their follow-up, which comes back as a new turn."""
        return self._update(state="input_required", message=_message(text), ends=True)

    def complete(self, text: str | None = None) -> Any:
        return self._update(state="completed", message=_message(text), ends=True)

    def fail(self, text: str) -> Any:
        return self._update(state="failed", message=_message(text), ends=True)

    def reject(self, text: str) -> Any:
        return self._update(state="rejected", message=_message(text), ends=True)

    def reply(self, text: str | None = None, *, data: Any = None) -> Any:
        """Answer with a message alone (no task)."""
        return self._update(reply=True, message={"parts": _parts(text, data)}, ends=True)

    def _update(self, ends: bool = False, **fields: Any) -> Any:
        if ends:
            self.ended = True
        args = {"task_id": self.task.task_id, "lease_token": self.lease.token, **fields}
        # An update that ends the turn is fenced by the lease (a repeat is refused); an artifact could be added twice.
        return self._run(self._agent._invoke("agora.a2a.update", "a2a.A2AUpdated", args, resend=ends))


def _parts(text: str | None, data: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": text}] if text is not None else []
    if data is not None:
        parts.append({"data": data})
    return parts


def _message(text: str | None) -> dict[str, Any] | None:
    return {"parts": [{"text": text}]} if text is not None else None


A2A_TURN = "a2a.message"  # the task type of an A2A task's turn


@dataclass
class _Route:
    handler: Handler
    message_type: str | None = None
    performative: str | None = None


class Agent:
    """An agent process: ``Agent("Echo").on_message()(handler)``, then ``agent.run()``."""

    def __init__(
        self,
        name: str,
        *,
        capabilities: list[str] | None = None,
        description: str = "",
        service_tier: str = "basic",
        metadata: dict[str, Any] | None = None,
        a2a: str | dict[str, Any] | None = None,
        url: str | None = None,
        api_key: str | None = None,
        data_dir: str | None = None,
        concurrency: int = 4,
        lease_seconds: float = 30.0,
        heartbeat_interval: float = 30.0,
        visibility_timeout: float = 60.0,
        max_deliveries: int = 5,
        shutdown_grace: float = 30.0,
        channel: bool = True,
    ):
        self.name = name
        self.capabilities = list(capabilities or [])
        self.profile: dict[str, Any] = {"description": description, "service_tier": service_tier, "metadata": metadata or {}}
        if a2a is not None:  # "public" / "private", or the whole front (access, skills, modes)
            self.profile["a2a"] = {"access": a2a} if isinstance(a2a, str) else a2a
        self.client = AsyncAgoraClient(url, api_key, data_dir=data_dir)
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.heartbeat_interval = heartbeat_interval
        self.visibility_timeout = visibility_timeout
        self.max_deliveries = max_deliveries
        self.shutdown_grace = shutdown_grace
        self.use_channel = channel  # False: HTTP only (claims and receives parked on the hub)
        self.channel: Channel | None = None
        self.agent_id: str | None = None
        self.loop: asyncio.AbstractEventLoop
        self._task_handlers: dict[str | None, Handler] = {}
        self._message_routes: list[_Route] = []
        self._task_slots = _Slots(concurrency)  # task handlers running at once
        self._message_slots = _Slots(concurrency)  # and message handlers
        self._backoff = RetryPolicy(retries=0, base=0.25, cap=5.0)
        self._idle: set[asyncio.Task[Any]] = set()  # loops parked waiting for work: cancelled at once on stop
        self._loops: list[asyncio.Task[Any]] = []
        self._handlers_running: set[asyncio.Task[Any]] = set()
        self._outcomes = _Coalescer(self._send_outcomes, MAX_REPORT)  # task outcomes: agora.task.update_batch
        self._acks = _Coalescer(self._send_acks, MAX_ACK)  # handled messages: agora.messaging.ack
        self._lent = 0  # task slots given to the hub as credit on the open channel
        self._incoming: asyncio.Queue[Message] = asyncio.Queue()  # pushed messages waiting for a handler slot
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()

    # -- declaring handlers ---------------------------------------------------------------------------------------

    def on_task(self, task_type: str | None = None) -> Callable[[Handler], Handler]:
        """Handle tasks of ``task_type`` (every type when None). The return value is the task's result."""

        def register(handler: Handler) -> Handler:
            self._task_handlers[task_type] = handler
            return handler

        return register

    def on_a2a(self) -> Callable[[Handler], Handler]:
        """Handle A2A tasks sent to this agent's A2A front (on, private, unless ``a2a=`` says otherwise)."""

        def register(handler: Handler) -> Handler:
            self._task_handlers[A2A_TURN] = handler
            self.profile.setdefault("a2a", {"access": "private"})
            return handler

        return register

    def on_message(self, message_type: str | None = None, *, performative: str | None = None) -> Callable[[Handler], Handler]:
        """Handle messages (optionally only of one ``message_type`` or ``performative``); acked once it returns."""

        def register(handler: Handler) -> Handler:
            self._message_routes.append(_Route(handler, message_type, performative))
            return handler

        return register

    # -- running ----------------------------------------------------------------------------------------------------

    def run(self) -> None:
        """Run until SIGINT or SIGTERM, then finish the handlers that are running (up to ``shutdown_grace``)."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
            logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is the hub's job
        _run(self.serve())

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread (uvloop: ValueError)
                loop.add_signal_handler(sig, self._stopping.set)
        await self.start()
        await self._stopping.wait()
        await self.stop()

    async def start(self) -> None:
        """Register and start the loops; returns once the agent is registered."""
        self.loop = asyncio.get_running_loop()
        await self._register()
        self._loops = [asyncio.create_task(self._heartbeats(), name="agora-heartbeat")]
        if self.use_channel and (self._task_handlers or self._message_routes):
            self.channel = Channel(
                self.client, MESSAGE_TYPES if self._message_routes else None, self.visibility_timeout,
                on_event=self._pushed_event, on_tasks=self._pushed_tasks, take=self._take, on_down=self._channel_down,
                messages=self.concurrency if self._message_routes else None,
            )  # fmt: skip
            self.client.channel = self.channel
            self._loops.append(asyncio.create_task(self._hold_channel(), name="agora-channel"))
            if self._message_routes:
                self._loops.append(asyncio.create_task(self._dispatch_messages(), name="agora-messages"))
        else:
            self._start_http_loops()
        self.ready.set()
        log.info("agent %s (%s) is running", self.name, self.agent_id)

    def _start_http_loops(self) -> None:
        if self._task_handlers:
            self._loops.append(asyncio.create_task(self._claims(), name="agora-claims"))
        if self._message_routes:
            self._loops.append(asyncio.create_task(self._messages(), name="agora-messages"))

    async def _hold_channel(self) -> None:
        """Until ``stop`` ends it, after the handlers' last answers went out on it."""
        assert self.channel is not None
        try:
            await self.channel.run()
        except ChannelRefused as exc:
            log.warning("the hub's WebSocket is out of reach (%s): taking work over HTTP", exc)
            self.client.channel = self.channel = None
            self._start_http_loops()

    async def stop(self) -> None:
        """Stop taking work, let running handlers finish (up to ``shutdown_grace``), then close."""
        self._stopping.set()
        if self.channel is not None:
            self.channel.stop_taking()  # running handlers still answer on it
        for task in list(self._idle):
            task.cancel()
        # The channel lives on until the handlers' last answers went out on it.
        working = {t for t in self._loops if not t.done() and t.get_name() != "agora-channel"} | self._handlers_running
        if working:
            await asyncio.wait(working, timeout=self.shutdown_grace)
        for task in [*self._loops, *self._handlers_running]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._handlers_running, return_exceptions=True)
        await self.client.aclose()
        log.info("agent %s stopped", self.name)

    async def _register(self) -> None:
        registration = await self._retrying(
            lambda: self.client.register(self.name, capabilities=self.capabilities, **self.profile), "register"
        )
        self.agent_id = registration.agent_id

    async def _retrying(self, call: Callable[[], Awaitable[T]], what: str) -> T:
        """Call until it succeeds while the hub is unreachable (a restart), backing off; other errors are raised."""
        attempt = 0
        while True:
            try:
                return await call()
            except Unavailable as exc:
                if self._stopping.is_set():
                    raise
                log.warning("%s: hub unavailable (%s); retrying", what, exc.message)
                await asyncio.sleep(self._backoff.delay(min(attempt, 5)))
                attempt += 1

    async def _heartbeats(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._idle.add(me)
        while not self._stopping.is_set():
            await asyncio.sleep(self.heartbeat_interval)
            with contextlib.suppress(AgoraError):
                busy = self._handlers_running or any(t not in self._idle for t in self._loops)
                await self.client.agents.heartbeat(status="busy" if busy else "active")

    # -- tasks ------------------------------------------------------------------------------------------------------

    def _take(self) -> dict[str, Any] | None:
        """What a new connection declares: the task types handled, and every slot free now as credit."""
        if not self._task_handlers or self._stopping.is_set():
            return None
        self._lent += self._task_slots.take_free()
        return {"task_types": self._wanted_types(), "capacity": self.concurrency, "credit": self._lent, "lease_seconds": self.lease_seconds}

    def _pushed_tasks(self, raw: list[dict[str, Any]]) -> None:
        claims = [Claim.model_validate(c) for c in raw]
        if self._stopping.is_set():  # pushed while we said we stop: back to the queue, no attempt spent
            self._lent -= len(claims)
            self._task_slots.give(len(claims))
            self._start_handler(self._give_back(claims), None)
            return
        for claim in claims:
            self._lent -= 1  # the hub pushes no more than the credit given
            self._start_handler(self._work(TaskRun(self, claim.task, claim.lease)), None)

    async def _give_back(self, claims: list[Claim]) -> None:
        updates = [{"task_id": c.task.task_id, "lease_token": c.lease.token, "status": "pending"} for c in claims]
        with contextlib.suppress(AgoraError):
            await self._invoke("agora.task.update_batch", "tasks.UpdatedBatch", {"updates": updates})

    def _channel_down(self) -> None:
        """Credit given on a broken connection is void: its slots are free again (the next ``take`` lends them)."""
        self._task_slots.give(self._lent)
        self._lent = 0

    def _slots_back(self, count: int) -> None:
        """Task slots free again: given to the hub as credit on the open channel, else to the HTTP claim loop."""
        if count <= 0:
            return
        if self.channel is not None and self.channel.up.is_set() and not self._stopping.is_set():
            self._lent += count
            self.channel.credit(tasks=count)
        else:
            self._task_slots.give(count)

    def _wanted_types(self) -> list[str]:
        return [] if None in self._task_handlers else [t for t in self._task_handlers if t is not None]

    async def _claims(self) -> None:
        """Without the channel: one claim at a time, parked until work comes, for as many tasks as task slots are free;
        each task claimed runs in its slot while the loop claims the next. (One parked claim per agent, not one per
        slot: a new task wakes one claimer of this agent, not ``concurrency`` of them.)"""

        async def claim(free: int) -> list[Claim]:
            claimed = await self.client.task.claim_batch(
                wait=CLAIM_WAIT, lease_seconds=self.lease_seconds, max_tasks=free, task_types=self._wanted_types()
            )
            return claimed.claims

        await self._poll(self._task_slots, claim, lambda c: self._start_handler(self._work(TaskRun(self, c.task, c.lease)), None), "claim")

    async def _poll(self, slots: _Slots, fetch: Callable[[int], Awaitable[list[T]]], start: Callable[[T], None], what: str) -> None:
        """Long polls parked on the hub for as many items as ``slots`` are free, each item started in its slot; a
        failed poll is retried with backoff."""
        attempt = 0
        me = asyncio.current_task()
        assert me is not None
        while not self._stopping.is_set():
            free = await slots.take(MAX_CLAIM)
            self._idle.add(me)  # parked in a poll: stopping cancels it at once
            try:
                items = await fetch(free)
            except AgoraError as exc:
                slots.give(free)
                log.warning("%s failed (%s); retrying", what, exc.message)
                await asyncio.sleep(self._backoff.delay(min(attempt, 5)))
                attempt += 1
                continue
            except BaseException:
                slots.give(free)
                raise
            finally:
                self._idle.discard(me)
            attempt = 0
            for item in items:
                start(item)
            slots.give(free - len(items))

    async def _work(self, run: TaskRun) -> None:
        handler = self._task_handlers.get(run.task.task_type) or self._task_handlers[None]
        if run.task.task_type == A2A_TURN and A2A_TURN in self._task_handlers:
            run = A2ATurn(self, run.task, run.lease)
        renewing = asyncio.create_task(self._keep_lease(run))
        try:
            result = await self._call(handler, run)
            await run.output.flush()  # its output is all there before the task is seen to end
        except Exception as exc:  # noqa: BLE001 - the handler's failure is the task's failure
            log.exception("task %s failed", run.task.task_id)
            outcome = {"status": "failed", "notes": f"{type(exc).__name__}: {exc}"[:4000], "retry": not isinstance(run, A2ATurn)}
        except BaseException:
            self._slots_back(1)
            raise
        else:
            if isinstance(run, A2ATurn) and (run.ended or isinstance(result, str) or result is None):
                renewing.cancel()
                self._slots_back(1)  # the next task may come while this answer travels
                if not run.ended:  # else the handler answered the caller itself
                    await run.complete(result)
                return
            outcome = {"status": "completed", "result": result}
        finally:
            renewing.cancel()
        await self._report({"task_id": run.task.task_id, "lease_token": run.lease.token, **outcome})

    async def _report(self, outcome: dict[str, Any]) -> None:
        """Hand a task's outcome to the hub, with those of other tasks that finish meanwhile. With the channel, the
        task's slot rides along: the report takes the next task in the same call (``claim_next``)."""
        if self.channel is None:
            self._task_slots.give()
        error = await self._outcomes.put(outcome)
        if error is not None:  # the lease was lost (expired and reclaimed): the newer claim's outcome counts
            log.warning("task %s: %s", outcome["task_id"], error)

    async def _send_outcomes(self, outcomes: list[dict[str, Any]]) -> list[str | None]:
        """Report outcomes in one call (and take as many tasks as they free slots): why each changed nothing."""
        riding = len(outcomes) if self.channel is not None else 0
        args: dict[str, Any] = {"updates": outcomes, "brief": True}
        if riding and not self._stopping.is_set():
            args["claim_next"] = {"max_tasks": riding, "task_types": self._wanted_types(), "lease_seconds": self.lease_seconds}
        try:
            answer = await self._retrying(lambda: self._invoke("agora.task.update_batch", "tasks.UpdatedBatch", args), "task update")
        except AgoraError:
            self._slots_back(riding)
            if len(outcomes) == 1:
                raise
        except BaseException:
            self._slots_back(riding)
            raise
        else:
            for claim in answer.claims:
                self._start_handler(self._work(TaskRun(self, claim.task, claim.lease)), None)
            self._slots_back(riding - len(answer.claims))
            return [r.error.message if r.error is not None else None for r in answer.results]
        # The call was refused as a whole (one result too large for a request, say): each on its own, so one bad
        # outcome never costs the others theirs.
        return [await self._send_alone(outcome) for outcome in outcomes]

    async def _send_alone(self, outcome: dict[str, Any]) -> str | None:
        try:
            await self._retrying(lambda: self._invoke("agora.task.update", "tasks.Task", outcome), "task update")
        except AgoraError as exc:
            return exc.message
        return None

    async def _keep_lease(self, run: TaskRun) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            with contextlib.suppress(Unavailable):
                await self._renew(run, None, None)

    async def _renew(self, run: TaskRun, percent: int | None, notes: str | None) -> Task:
        args: dict[str, Any] = {"lease_seconds": self.lease_seconds}
        if percent is not None:
            args["progress"] = percent
        if notes is not None:
            args["notes"] = notes
        result: Task = await self._invoke("agora.task.heartbeat", "tasks.Task", {"task_id": run.task.task_id, "lease_token": run.lease.token, **args})
        return result

    # -- messages ---------------------------------------------------------------------------------------------------

    def _pushed_event(self, event: StreamEvent) -> None:
        if event.message is not None:
            self._incoming.put_nowait(event.message)

    async def _dispatch_messages(self) -> None:
        """Messages pushed on the channel, each to a handler as a slot frees (the socket is never held up: the
        answers to the handlers' own calls come on it)."""
        me = asyncio.current_task()
        assert me is not None
        self._idle.add(me)
        while True:
            message = await self._incoming.get()
            await self._message_slots.take(1)
            self._start_handler(self._deliver(IncomingMessage(self, message)), self._message_slots)

    async def _messages(self) -> None:
        """Without the channel: messages from a receive parked on the hub, as many as message slots are free."""

        async def receive(free: int) -> list[Message]:
            inbox = await self.client.messaging.receive(wait=CLAIM_WAIT, limit=free, visibility_timeout=self.visibility_timeout)
            return inbox.messages

        await self._poll(self._message_slots, receive, lambda m: self._start_handler(self._deliver(IncomingMessage(self, m)), self._message_slots), "receive")

    def _route(self, message: Message) -> _Route | None:
        for route in self._message_routes:
            if route.message_type not in (None, message.message_type):
                continue
            if route.performative not in (None, message.performative):
                continue
            return route
        return None

    async def _deliver(self, incoming: IncomingMessage) -> None:
        try:
            await self._handle(incoming)
        finally:
            if self.channel is not None:
                self.channel.credit(messages=1)  # its slot is free: room for the next pushed message

    async def _handle(self, incoming: IncomingMessage) -> None:
        message = incoming.message
        route = self._route(message)
        if route is not None:
            try:
                await self._call(route.handler, incoming)
            except Exception:  # noqa: BLE001 - unacked, it comes back after the visibility timeout
                log.exception("message %s: handler failed (delivery %d)", message.message_id, message.delivery_count)
                if message.delivery_count < self.max_deliveries:
                    return
                log.error("message %s dropped after %d deliveries", message.message_id, message.delivery_count)
        error = await self._acks.put(message.message_id)
        if error is not None:
            log.warning("message %s: ack refused: %s", message.message_id, error)

    async def _send_acks(self, message_ids: list[str]) -> list[str | None]:
        """Ack handled messages in one call; if it is refused (a message no longer in the inbox), each on its own."""
        try:
            await self._retrying(lambda: self._invoke("agora.messaging.ack", "messaging.Acked", {"message_ids": message_ids}), "ack")
            return [None] * len(message_ids)
        except AgoraError as exc:
            if len(message_ids) == 1:
                return [exc.message]
        return [(await self._send_acks([message_id]))[0] for message_id in message_ids]

    # -- shared -----------------------------------------------------------------------------------------------------

    async def _invoke(self, tool: str, output: str, args: dict[str, Any], *, resend: bool = True) -> Any:
        """The runtime's own calls: fenced by a lease or idempotent (an ack), so safe to send again after a broken
        connection; over the channel while it is open."""
        return await self.client._invoke(tool, wire_model(output), args, retry_safe=resend)

    def _start_handler(self, work: Coroutine[Any, Any, None], slots: _Slots | None) -> None:
        """Run one handler in the slot the caller acquired from ``slots`` (freed when it ends; None: the handler
        frees its own)."""
        task = asyncio.create_task(work)
        self._handlers_running.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._handlers_running.discard(t)
            if slots is not None:
                slots.give()

        task.add_done_callback(done)

    async def _call(self, handler: Handler, arg: Any) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(arg)
        return await asyncio.to_thread(handler, arg)


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop's event loop where it is installed (the hub's own install brings it, on Linux and
    macOS), else on asyncio's: every frame, hand-off and answer is an event-loop turn, and uvloop's cost less."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


__all__ = ["A2ATurn", "Agent", "IncomingMessage", "TaskRun"]
