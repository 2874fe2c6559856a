"""Redis notifier: several hub replicas on one database wake each other through one Redis channel.

Redis pub/sub is fire-and-forget, and that is enough here: the store holds the truth and subscribers catch up from
it by cursor, so a message lost while Redis is away only delays a wake-up. Hence the choices below: local delivery
never waits for Redis, publishing never raises, and the reader reconnects forever instead of failing the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .base import Event, Notifier
from .memory import InProcessNotifier

log = logging.getLogger("agora.bus")

DEFAULT_CHANNEL = "agora:events"


def _redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else "***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


class RedisNotifier(Notifier):
    """Fans events out locally at once and, through one Redis channel, to the other replicas.

    Every message carries this instance's origin id, so the copy that comes back from Redis is skipped: local
    subscribers see each event exactly once, without waiting for the round trip. Outgoing messages go through a
    bounded outbox drained by one sender task: publish() never waits on the network, a burst of concurrent publishers
    shares one connection (pipelined) instead of opening one each, and the other replicas receive this replica's
    events in the order its local subscribers did.
    """

    def __init__(
        self,
        url: str,
        channel: str = DEFAULT_CHANNEL,
        *,
        connect_timeout: float = 1.0,
        publish_timeout: float = 1.0,
        ping_interval: float = 5.0,
        min_backoff: float = 0.1,
        max_backoff: float = 1.0,  # Redis back: the replicas hear each other again within about a second
        client_name: str | None = "agora-hub",
        outbox_size: int = 10_000,
    ) -> None:
        self.channel = channel
        self._url = url
        self._local = InProcessNotifier()
        self._origin = uuid.uuid4().hex
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._ping_interval = ping_interval
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._backoff = min_backoff
        # One immediate retry: a connection dropped under us (idle timeout, CLIENT KILL, failover) is reopened in
        # place, and the subscriber resubscribes; a real outage fails fast and is handled by the reader loop below,
        # so that it shows in healthy() and in the log.
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout,
            socket_timeout=publish_timeout,
            retry=Retry(NoBackoff(), 1),
            client_name=client_name,
        )
        self._connected = False
        self._outage_logged = False
        self._publish_warned = False
        self._settled = asyncio.Event()  # the first connection attempt is over, whichever way it went
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=outbox_size)
        self._tasks: list[asyncio.Task[None]] = []
        self.unsent = 0  # events other replicas did not get from us: outbox full, or PUBLISH failed
        self.malformed = 0

    @property
    def dropped(self) -> int:
        """Events lost because a local subscriber's queue was full (it catches up from the store)."""
        return self._local.dropped

    # -- Notifier --------------------------------------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Deliver locally now and queue the event for the other replicas; never raises, never waits on Redis."""
        await self._local.publish(event)
        if not self._connected:
            return  # Redis is away: the others catch up from the store; no backlog to flood them with on return
        try:
            payload = orjson.dumps(
                {"origin": self._origin, "type": event.type, "tenant_id": event.tenant_id, "data": event.data}
            )
            self._outbox.put_nowait(payload)
        except TypeError:
            log.exception("notifier: event %r is not JSON-serialisable; not sent to other replicas", event.type)
        except asyncio.QueueFull:
            self.unsent += 1  # Redis cannot keep up (or stopped answering): a wake-up lost, never memory

    def subscribe(self, maxsize: int = 1000) -> asyncio.Queue[Event]:
        return self._local.subscribe(maxsize)

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        self._local.unsubscribe(q)

    async def start(self) -> None:
        """Start the reader; return once the first attempt to subscribe has succeeded or failed.

        An unreachable Redis does not fail the start: the hub runs on local delivery, reports itself degraded
        through healthy(), and the reader keeps trying. Waiting for the subscription means that a replica that
        has started hears every event published after that.
        """
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._read_forever(), name=f"agora-redis-notifier-reader:{self.channel}"),
            asyncio.create_task(self._send_forever(), name=f"agora-redis-notifier-sender:{self.channel}"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), 2 * (self._connect_timeout + self._publish_timeout))

    async def close(self) -> None:
        """Send what is queued (briefly), stop both tasks and close every connection; quick whatever Redis does."""
        tasks, self._tasks = self._tasks, []
        if tasks and self._connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outbox.join(), 0.2)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._connected = False
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._redis.aclose(), 0.5)

    def healthy(self) -> bool:
        """True while subscribed to the channel, i.e. while events from other replicas can reach us."""
        return self._connected

    # -- sender and reader ----------------------------------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        """Drain the outbox: whatever has queued up goes in one pipeline, bounded by ``publish_timeout``."""
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < 1000 and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for payload in batch:
                        pipe.publish(self.channel, payload)
                    await asyncio.wait_for(pipe.execute(), self._publish_timeout)
            except Exception as exc:  # noqa: BLE001 - a send that fails is a lost wake-up, not a crash
                self.unsent += len(batch)
                self._resubscribe(exc)
                if not self._publish_warned:
                    self._publish_warned = True
                    log.warning(
                        "notifier: PUBLISH to Redis failed (%s: %s); other replicas miss wake-ups until it works",
                        type(exc).__name__,
                        exc,
                    )
            else:
                if self._publish_warned:
                    self._publish_warned = False
                    log.info("notifier: PUBLISH to Redis works again")
            finally:
                for _ in batch:
                    self._outbox.task_done()

    def _resubscribe(self, exc: BaseException) -> None:
        """A PUBLISH went unanswered: Redis is likely cut off (a half-open connection says nothing until the reader's
        PING, seconds later). The bus counts as down at once, so parked callers poll the store meanwhile, and the
        reader subscribes afresh: at once if Redis answers, else with its backoff."""
        if not self._connected or not self._tasks:
            return
        self._went_down(exc)
        reader = self._tasks[0]
        reader.cancel()
        self._tasks[0] = asyncio.create_task(self._read_forever(), name=reader.get_name())

    async def _read_forever(self) -> None:
        """Listen, and after any failure back off (capped, exponential, jittered) and listen again, until cancelled."""
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, the hub carries on without Redis
                self._went_down(exc)
            await asyncio.sleep(self._backoff * random.uniform(0.5, 1.0))
            self._backoff = min(self._backoff * 2, self._max_backoff)

    async def _listen(self) -> None:
        """Subscribe and fan received events out locally; returns only by raising.

        A blocking read would never notice a half-open connection (peer gone without a FIN), so the read times out
        every ``ping_interval`` of silence to send a PING, and no answer within half an interval more counts as lost.
        """
        pubsub = self._redis.pubsub()
        loop = asyncio.get_running_loop()
        try:
            await pubsub.subscribe(self.channel)
            last_heard = loop.time()
            while True:
                message = await pubsub.get_message(timeout=self._ping_interval)
                now = loop.time()
                if message is None:
                    if now - last_heard > 1.5 * self._ping_interval:
                        raise aioredis.ConnectionError("no answer to PING from Redis")
                    await pubsub.ping()
                    continue
                last_heard = now
                if message["type"] == "message":
                    await self._deliver(message["data"])
                elif message["type"] == "subscribe":
                    self._came_up()
        finally:
            self._connected = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 0.5)

    async def _deliver(self, raw: bytes) -> None:
        try:
            body: dict[str, Any] = orjson.loads(raw)
            if body.get("origin") == self._origin:
                return  # our own event, already delivered locally by publish()
            event = Event(str(body["type"]), body.get("tenant_id"), dict(body.get("data") or {}))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            self.malformed += 1
            if self.malformed == 1:
                log.warning("notifier: ignoring a malformed message on Redis channel %r (more: debug)", self.channel)
            else:
                log.debug("notifier: ignoring a malformed message on Redis channel %r", self.channel)
            return
        await self._local.publish(event)

    def _came_up(self) -> None:
        self._connected = True
        self._backoff = self._min_backoff
        self._settled.set()
        if self._outage_logged:
            self._outage_logged = False
            log.info("notifier: subscribed to Redis channel %r at %s again", self.channel, _redact(self._url))

    def _went_down(self, exc: BaseException) -> None:
        self._connected = False
        self._settled.set()
        if not self._outage_logged:
            self._outage_logged = True
            log.warning(
                "notifier: Redis at %s unreachable (%s: %s); delivering locally only and reconnecting",
                _redact(self._url),
                type(exc).__name__,
                exc,
            )
