"""Live streams: what a WebSocket or SSE connection pushes to its principal, transport-agnostic.

A stream keeps no queue of its own. When the notifier wakes it (or a hidden delivery becomes visible again) it reads
the store: the agent's inbox deliveries (handed out with a visibility timeout, exactly like ``receive``) and the hub
events its principal may see. A direct message sent through this replica to an agent whose stream is here, with room
and nothing earlier due, is handed out to the stream in the send's own statement and handed to it (``core/handoff``):
no wake-up, read or write of the stream's own. So a slow or vanished client costs one batch of frames, never a
growing buffer, and a client that reconnects with the ``id`` of the last frame it processed resumes where it left off: events after that
position, and every unacked message the lost connection had been sent after it, at once.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from agora.core.auth import Principal, PrincipalKind
from agora.core.authn import ANY_CREDENTIALS, credentials_key
from agora.core.context import Hub
from agora.core.services import agents as agent_service
from agora.core.wakeups import inbox_key
from agora.observability import metrics
from agora.store.ops import agents as agent_ops
from agora.store.ops import events as event_ops
from agora.store.ops import shared as shared_ops
from agora.store.ops import streams as stream_ops
from agora.store.ops.pagination import decode_cursor, encode_cursor
from agora_sdk.errors import InvalidArgument

log = logging.getLogger("agora.streams")

BATCH = 100
MESSAGE_EVENTS = {"direct": "message_received", "broadcast": "broadcast_message", "topic": "topic_message"}
_TOKEN = re.compile(r"^e(\d{1,18})m(\d{1,18})$")


@dataclass
class Position:
    """Where a stream stands: the last hub event sent, and the highest message sequence number sent."""

    events: int
    messages: int

    def token(self) -> str:
        return encode_cursor(f"e{self.events}m{self.messages}")

    @classmethod
    def parse(cls, token: str) -> Position:
        match = _TOKEN.match(decode_cursor(token) or "")
        if match is None:
            raise InvalidArgument("resume token is not one this hub issued", details={"field": "resume"})
        return cls(int(match[1]), int(match[2]))


@dataclass(frozen=True)
class Frame:
    """One pushed item: ``type`` (message_received, agent_registered, …), the resume ``id`` after it, and the body:
    a message's JSON as rendered, or an event's fields."""

    type: str
    id: str
    message: bytes | None = None
    event: dict[str, Any] | None = None

    def json(self) -> bytes:
        if self.message is not None:
            return b'{"type":"%s","id":"%s","message":%s}' % (self.type.encode(), self.id.encode(), self.message)
        return orjson.dumps({"type": self.type, "id": self.id, **(self.event or {})})


def _matcher(patterns: list[str]) -> re.Pattern[str]:
    """Globs such as ``agent_*`` as one regex; no patterns match nothing."""
    return re.compile("|".join(fnmatch.translate(p) for p in patterns) or "(?!)")


@dataclass
class Stream:
    hub: Hub
    principal: Principal
    types: list[str] = field(default_factory=lambda: ["*"])
    visibility_seconds: float = 30.0
    resume: str | None = None
    position: Position = field(init=False)
    _agent: dict[str, Any] | None = field(init=False, default=None)
    _resend_until: int = field(init=False, default=0)
    end_reason: str = field(init=False, default="hub stopping")  # why ``frames`` ended: or "credentials revoked"
    message_window: int | None = field(init=False, default=None)  # messages pushed unanswered at most (None: any)
    _message_credit: int = field(init=False, default=0)
    _starved: _Due = field(init=False, default_factory=lambda: _Due())  # what went unread for want of credit
    _handed: list[dict[str, Any]] = field(init=False, default_factory=list)  # messages handed to it, not yet framed
    _sending: list[int] = field(init=False, default_factory=list)  # seqs of the inbox deliveries the door is sending

    def hold_messages(self, window: int, credit: int) -> None:
        """From now on push messages only while the client gives credit for them (its free handler slots)."""
        self.message_window, self._message_credit = window, 0
        self.give_messages(credit)

    def give_messages(self, count: int) -> None:
        if self.message_window is None:
            return
        self._message_credit = min(self.message_window, self._message_credit + count)
        if self._message_credit > 0 and self._starved.any:
            self.hub.wakeups.wake([self._credit_key])

    @property
    def _credit_key(self) -> str:
        return f"stream-credit:{id(self)}"

    @property
    def _handed_key(self) -> str:
        return f"stream-handed:{id(self)}"

    # -- a ``core.handoff.Reader`` of the agent's direct messages ----------------------------------------------------

    def reserve_message(self) -> bool:
        if self.position.messages < self._resend_until or self.hub.wakeups.draining:
            return False  # a resumed stream sends what the lost connection had first
        if self.message_window is not None:
            if self._message_credit <= 0:
                return False
            self._message_credit -= 1
        return True

    def unreserve_message(self) -> None:
        self.give_messages(1)

    def hand_message(self, row: dict[str, Any]) -> None:
        self._handed.append({**row, "subscription_id": None, "delivery_count": 1})
        self.hub.wakeups.wake([self._handed_key])

    async def open(self) -> None:
        """Check the request (a bad token or filter is the client's error, before any frame) and find the start.
        Opening a stream counts as a read against the principal's rate limit."""
        await self.hub.throttle.charge(self.principal.limit_key, self.principal.kind.value, "read")
        if self.resume is not None:
            self.position = Position.parse(self.resume)
        else:
            self.position = Position(await self.hub.store.read(event_ops.latest), 0)
        if self.principal.kind is PrincipalKind.agent:
            self._agent = agent = await self.hub.store.read(agent_ops.resolve, None, self.principal.agent_id)
            if self.resume is not None:
                self._resend_until = await self.hub.store.read(shared_ops.latest_seq, agent["tenant_id"])
                await self.hub.store.write(shared_ops.reclaim_after, agent, self.position.messages, self.hub.clock.now())
            await agent_service.touch(self.hub, agent["agent_id"])

    @property
    def agent(self) -> dict[str, Any] | None:
        """The agent the stream is of (its row as the stream opened), or None for a key that is no agent."""
        return self._agent

    @property
    def wake_keys(self) -> list[str]:
        tenant = self.principal.tenant_scope()
        keys = [f"events:{tenant or '*'}"] if self.types else []
        if self._agent is not None and self.types:
            keys += [inbox_key(self._agent["agent_id"]), f"tenant:{self._agent['tenant_id']}"]
        if self.principal.key_hash is not None:
            keys += [credentials_key(self.principal.key_hash), ANY_CREDENTIALS]
        if self.message_window is not None:
            keys.append(self._credit_key)
        if self._agent is not None:
            keys.append(self._handed_key)
        return keys

    async def frames(self, keepalive: float | None = None) -> AsyncIterator[list[Frame] | None]:
        """Frames as they come, forever, those of one read together (a door may write them in one go), and ``None``
        after ``keepalive`` idle seconds (for doors that need a heartbeat on the wire). While the connection lives,
        the agent counts as present."""
        if self._agent is None:
            async for frames in self._frames(keepalive):
                yield frames
            return
        agent_id = self._agent["agent_id"]
        self.hub.live.opened(agent_id)  # its presence is written with the others' (core/presence)
        reads = bool(_matcher(self.types).match(MESSAGE_EVENTS["direct"]))
        if reads:
            self.hub.handoffs.add_reader(agent_id, self)
        try:
            async for frames in self._frames(keepalive):
                yield frames
        finally:
            if reads:
                self.hub.handoffs.remove_reader(agent_id, self)
            await self._give_back(agent_id)
            self.hub.live.closed(agent_id)

    async def _give_back(self, agent_id: str) -> None:
        """Direct messages the stream had as it ended but did not send are due again at once (the agent's next
        connection, or another one, takes them) instead of after their visibility timeout: those handed to it and not
        framed yet (as if never handed out), and those of the frames its door was sending (maybe sent: still counted)."""
        unframed, self._handed = [row["seq"] for row in self._handed], []
        unsent, self._sending = self._sending, []
        if not unframed and not unsent:
            return
        try:
            await self.hub.store.write(stream_ops.give_back, agent_id, unframed, unsent, self.hub.clock.now())
        except Exception:  # noqa: BLE001 - they still come back after their visibility timeout
            log.warning("giving back messages a closed stream had not sent failed", extra={"agent_id": agent_id}, exc_info=True)
            return
        self.hub.wakeups.wake([inbox_key(agent_id)])

    async def _frames(self, keepalive: float | None) -> AsyncIterator[list[Frame] | None]:
        wants = _matcher(self.types)
        kinds = [kind for kind, event in MESSAGE_EVENTS.items() if wants.match(event)]
        next_keepalive = time.monotonic() + (keepalive or float("inf"))
        due = _Due(inbox=True, shared=True, events=True, timer=True)  # the first read looks at everything
        next_visible: datetime | None = None
        while True:
            with self.hub.wakeups.armed(self.wake_keys) as woken:
                batch, due, next_visible = await self._read(kinds, wants, due, next_visible)
                if batch:
                    yield batch
                    self._sending = []  # the door asked for more: it sent them
                    next_keepalive = time.monotonic() + (keepalive or float("inf"))
                if due.any:  # a part came back full: read on at once, with whatever woke us while we were sending
                    due = due | self._what_woke(woken.fired, next_visible)
                    continue
                if self.hub.wakeups.draining:
                    return  # the hub is stopping: the client resumes elsewhere with the last frame's id
                now = time.monotonic()
                if now >= next_keepalive:
                    yield None
                    next_keepalive = now + (keepalive or float("inf"))
                timeout = next_keepalive - now
                if next_visible is not None:
                    timeout = min(timeout, max(0.0, (next_visible - self.hub.clock.now()).total_seconds()) + 0.01)
                await woken.wait(timeout)
                if any(key.startswith("credentials:") for key in woken.fired) and not await self.hub.auth.still_valid(self.principal):
                    self.end_reason = "credentials revoked"
                    return  # a revoked key (or a terminated agent) is not pushed another frame
                due = self._what_woke(woken.fired, next_visible)

    def _what_woke(self, fired: set[str], next_visible: datetime | None) -> _Due:
        timer = next_visible is not None and next_visible <= self.hub.clock.now()
        starved = _Due()
        if self._credit_key in fired:
            starved, self._starved = self._starved, _Due()
        return starved | _Due(
            inbox=timer or any(k.startswith("agent:") for k in fired),
            shared=any(k.startswith("tenant:") for k in fired),
            events=any(k.startswith("events:") for k in fired),
            timer=timer,
        )

    async def _read(
        self, kinds: list[str], wants: re.Pattern[str], due: _Due, next_visible: datetime | None
    ) -> tuple[list[Frame], _Due, datetime | None]:
        """Read what ``due`` says may have changed; returns the frames, what to read again at once, the next timer."""
        p = self.principal
        now = self.hub.clock.now()
        after = self.position.events
        sent = self.position.messages
        resend = (sent, self._resend_until) if sent < self._resend_until else None
        wanted = self._agent is not None and bool(kinds) and (due.inbox or due.shared or resend is not None)
        limit = BATCH if self.message_window is None else min(BATCH, self._message_credit)
        deliver = wanted and limit > 0
        if wanted and not deliver:  # no credit: read it when the client gives some
            self._starved = self._starved | _Due(inbox=True, shared=due.shared)

        def op(conn: Connection) -> tuple[list[dict[str, Any]], list[bytes], datetime | None, list[dict[str, Any]], int]:
            rows, rendered, visible = [], [], next_visible
            if deliver:
                rows, visible = stream_ops.deliver(
                    conn, self._agent, kinds=kinds, shared=due.shared, resend=resend, limit=limit,
                    visibility=timedelta(seconds=self.visibility_seconds), now=now, next_visible=next_visible, recompute=due.timer,
                    known=self.hub.rendered,
                )
                rendered = self.hub.rendered.render(rows, lambda seqs: shared_ops.whole_messages(conn, seqs))
            events: list[dict[str, Any]] = []
            passed = after
            if due.events and self.types:
                events = event_ops.after(conn, after, tenant_scope=p.tenant_scope(), viewer_agent=p.agent_id, limit=BATCH)
                passed = events[-1]["seq"] if events else after
                events = [e for e in events if wants.match(e["type"])]
                if self._agent is not None and any(e["visible_to"] is None for e in events):
                    # An agent gets the events addressed to it, and of its tenant's events those it subscribed to.
                    subscribed = _matcher(stream_ops.subscribed_event_types(conn, self._agent["agent_id"]))
                    events = [e for e in events if e["visible_to"] is not None or subscribed.match(e["type"])]
            return rows, rendered, visible, events, passed

        if deliver or (due.events and self.types):
            # Handing out messages changes delivery state (a write); otherwise the stream only reads.
            rows, rendered, visible, events, passed = await (self.hub.store.write if deliver else self.hub.store.read)(op)
        else:
            rows, rendered, visible, events, passed = [], [], next_visible, [], after
        handed, self._handed = self._handed, []
        if rows:
            metrics.count_streamed("read", len(rows))
        if handed:
            metrics.count_streamed("handed", len(handed))
            # (the credit they take was reserved as they were handed; their timer is the latest's, like a read's)
            rendered = [*rendered, *self.hub.rendered.whole(handed)]
            until = handed[0]["created_at"] + timedelta(seconds=self.visibility_seconds)
            visible = min(visible or until, until)
        self._sending = [r["seq"] for r in [*rows, *handed] if not r.get("lent")]
        items: list[tuple[Any, str, int, bytes | dict[str, Any]]] = [
            (r["created_at"], MESSAGE_EVENTS[r["kind"]], r["seq"], message) for r, message in zip([*rows, *handed], rendered)
        ]
        items += [
            (e["created_at"], e["type"], e["seq"], {"tenant_id": e["tenant_id"], "data": e["data"], "timestamp": e["created_at"]})
            for e in events
        ]
        items.sort(key=lambda item: item[0])
        frames = []
        for _, kind, seq, body in items:
            if isinstance(body, bytes):
                self.position.messages = max(self.position.messages, seq)
                frames.append(Frame(kind, self.position.token(), message=body))
            else:
                self.position.events = seq
                frames.append(Frame(kind, self.position.token(), event=body))
        self.position.events = passed  # events skipped by the filters are passed for good
        if self.message_window is not None:
            self._message_credit -= len(rows)
        more_messages = deliver and len(rows) == limit
        again = _Due(inbox=more_messages, shared=more_messages and due.shared, events=passed - after >= BATCH and due.events)
        return frames, again, visible


@dataclass(frozen=True)
class _Due:
    """What the next read of a stream must look at, from what woke it."""

    inbox: bool = False  # the agent's own deliveries (a direct message landed, or a hidden one is visible again)
    shared: bool = False  # broadcasts and subscribed topics (pulled into the inbox first)
    events: bool = False  # hub events
    timer: bool = False  # the visibility timer fired: look up when the next one is due

    @property
    def any(self) -> bool:
        return self.inbox or self.shared or self.events

    def __or__(self, other: _Due) -> _Due:
        return _Due(
            self.inbox or other.inbox, self.shared or other.shared, self.events or other.events, self.timer or other.timer
        )
