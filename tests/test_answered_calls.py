"""``core/answered.AnsweredCalls``: a keyed call runs once per caller while its answer is kept, a failed run is not kept,
and the oldest answers go when time or room runs out."""

from __future__ import annotations

import asyncio

import pytest

from agora.core import answered
from agora.core.answered import AnsweredCalls
from agora_sdk.errors import Conflict, InvalidArgument


class Runs:
    def __init__(self) -> None:
        self.count = 0
        self.release = asyncio.Event()

    async def run(self) -> bytes:
        self.count += 1
        await self.release.wait()
        return b'{"n":%d}' % self.count


async def test_a_resend_during_and_after_the_first_run_gets_its_answer_and_runs_nothing() -> None:
    calls, runs = AnsweredCalls(), Runs()
    first = asyncio.create_task(calls.answer("t/a1", "k", "tool", b"{}", runs.run))
    await asyncio.sleep(0)
    during = asyncio.create_task(calls.answer("t/a1", "k", "tool", b"{}", runs.run))
    await asyncio.sleep(0)
    runs.release.set()
    assert await first == (b'{"n":1}', False)
    assert await during == (b'{"n":1}', True)
    assert await calls.answer("t/a1", "k", "tool", b"{}", runs.run) == (b'{"n":1}', True)
    assert await calls.answer("t/a2", "k", "tool", b"{}", runs.run) == (b'{"n":2}', False)  # another caller's key
    assert runs.count == 2
    with pytest.raises(InvalidArgument):
        await calls.answer("t/a1", "k", "tool", b'{"other":1}', runs.run)
    with pytest.raises(InvalidArgument):
        await calls.answer("t/a1", "x" * 101, "tool", b"{}", runs.run)


async def test_a_run_cancelled_with_its_task_keeps_nothing_and_its_waiting_resend_runs_it() -> None:
    """A keyed call runs in its caller's task (the work channel leaves keyed calls running when their connection
    closes); one cancelled all the same, as when the hub stops, is not kept: a resend waiting for it runs it."""
    calls, runs = AnsweredCalls(), Runs()
    first = asyncio.create_task(calls.answer("t/a", "k", "tool", b"{}", runs.run))
    await asyncio.sleep(0)
    during = asyncio.create_task(calls.answer("t/a", "k", "tool", b"{}", runs.run))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    runs.release.set()
    assert await during == (b'{"n":2}', False)
    assert first.cancelled() and runs.count == 2
    assert await calls.answer("t/a", "k", "tool", b"{}", runs.run) == (b'{"n":2}', True)


async def test_a_failed_run_is_not_kept() -> None:
    calls, tries = AnsweredCalls(), []

    async def refused() -> bytes:
        tries.append(1)
        raise Conflict("no")

    for _ in range(2):
        with pytest.raises(Conflict):
            await calls.answer("t/a", "k", "tool", b"{}", refused)
    assert len(tries) == 2


async def test_the_oldest_answers_go_when_room_or_time_runs_out(monkeypatch: pytest.MonkeyPatch) -> None:
    calls, runs = AnsweredCalls(), Runs()
    runs.release.set()
    monkeypatch.setattr(answered, "MAX_BYTES", 3 * (answered.ENTRY_BYTES + 7))
    for key in "abcd":
        await calls.answer("t/a", key, "tool", b"{}", runs.run)
    assert runs.count == 4
    await calls.answer("t/a", "d", "tool", b"{}", runs.run)  # kept
    await calls.answer("t/a", "a", "tool", b"{}", runs.run)  # the oldest went for room: it runs again
    assert runs.count == 5
    monkeypatch.setattr(answered, "KEEP_SECONDS", 0.0)
    await calls.answer("t/a", "d", "tool", b"{}", runs.run)  # expired: runs again
    assert runs.count == 6
