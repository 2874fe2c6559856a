"""Identifiers: the documented shape, unique, ordered by the second they were made, random within it."""

from __future__ import annotations

import time

from agora.core.ids import is_id, new_id


def test_ids_are_unique_random_and_ordered_by_their_second():
    before = int(time.time())
    ids = [new_id("msg") for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == len("msg_") + 24 and i.startswith("msg_") and is_id(i, "msg") for i in ids)
    seconds = [int(i[4:12], 16) for i in ids]
    assert seconds == sorted(seconds) and before <= seconds[0] <= seconds[-1] <= time.time()
    tails = [int(i[12:], 16) for i in ids]
    assert tails != sorted(tails)  # no counter: the next id does not follow from the last one
    assert 0.4 < sum(bin(t).count("1") for t in tails) / (64 * len(tails)) < 0.6  # the tails' bits are coin flips


def test_ids_made_before_random_ids_are_still_ids():
    assert is_id("agent_0123456789abcdef", "agent") and is_id("agent_6b06935500000000deadbeef12345678"[:30], "agent")
    assert not is_id("agent_0123456789abcde", "agent") and not is_id("task_0123456789abcdef", "agent")
