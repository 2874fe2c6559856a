"""Answers to keyed calls, kept a while, so a call sent again after its connection broke gets the answer it already had.

A runtime resends an unanswered call (a task's outcome, a lease renewal) on its next connection. Fencing makes the
resent outcome harmless, but an ``agora.task.update_batch`` that also took the runtime's next tasks (``claim_next``)
would take *other* tasks the second time, and the ones the lost answer carried would sit leased to nobody until their
leases ran out, each spending an attempt. A call that carries a ``key`` is answered from here when it comes again:
while the first run is still going, the resend waits for it; after, it gets the kept answer. Answers are kept per
caller (the same key from someone else is another call), for ``KEEP_SECONDS`` and within ``MAX_BYTES`` in all, on this
replica: a runtime that reconnects to another replica runs its resend again, which fencing keeps safe.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from agora_sdk.errors import InvalidArgument

KEEP_SECONDS = 60.0  # far longer than a runtime takes to reconnect (at most 5 s of backoff) and resend
MAX_BYTES = 32 * 1024 * 1024  # the oldest answers go first past this
ENTRY_BYTES = 1024  # what keeping one answer costs besides its body
MAX_KEY_LENGTH = 100


@dataclass
class _Answer:
    call: bytes  # digest of the tool and its arguments: a key sent again with another call is a mistake
    answer: asyncio.Future[bytes]
    at: float = field(default_factory=time.monotonic)


@dataclass
class AnsweredCalls:
    _answers: OrderedDict[tuple[str, str], _Answer] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _running: set[asyncio.Task[Any]] = field(default_factory=set)  # (held: a run outlives its connection's objects)

    async def answer(self, caller: str, key: object, tool: str, args: bytes, run: Callable[[], Coroutine[Any, Any, bytes]]) -> tuple[bytes, bool]:
        """The answer ``run`` gave (or gives) to this caller's call with ``key``, and whether it was given before; runs
        it only the first time, in the caller's task (which must not be cancelled because its connection closed: the
        resend will want the answer). A run that raised keeps nothing: a later resend runs again."""
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise InvalidArgument(f"a call's 'key' is a string of 1 to {MAX_KEY_LENGTH} characters", details={"field": "key"})
        self._expire()
        digest = hashlib.blake2b(tool.encode() + b"\0" + args, digest_size=16).digest()
        slot = (caller, key)
        kept = self._answers.get(slot)
        if kept is not None:
            if kept.call != digest:
                raise InvalidArgument("this key was sent with another call: give each call a key of its own", details={"field": "key"})
            try:
                return await asyncio.shield(kept.answer), True
            except asyncio.CancelledError:
                me = asyncio.current_task()
                if not kept.answer.cancelled() or (me is not None and me.cancelling()):
                    raise  # this call was cancelled, not the run
                # The first run was cancelled (its task ended with the hub): nothing is kept, this call runs it.
        answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        entry = self._answers[slot] = _Answer(digest, answer)
        me = asyncio.current_task()
        assert me is not None
        self._running.add(me)
        try:
            body = await run()
        except BaseException as exc:
            if self._answers.get(slot) is entry:
                del self._answers[slot]
            if isinstance(exc, asyncio.CancelledError):
                answer.cancel()
            else:
                answer.set_exception(exc)
                answer.exception()  # (retrieved: a resend waiting on it gets it; nobody else needs to)
            raise
        finally:
            self._running.discard(me)
        answer.set_result(body)
        self._bytes += len(body) + ENTRY_BYTES
        return body, False

    def _expire(self) -> None:
        """Answers older than ``KEEP_SECONDS``, then the oldest until the rest fit in ``MAX_BYTES`` (in order of their
        calls: the first kept is the first to go)."""
        now = time.monotonic()
        while self._answers:
            slot, oldest = next(iter(self._answers.items()))
            if not oldest.answer.done() or (now - oldest.at < KEEP_SECONDS and self._bytes <= MAX_BYTES):
                return
            del self._answers[slot]
            self._bytes -= len(oldest.answer.result()) + ENTRY_BYTES
