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


def test_ids_made_on_many_threads_and_lease_sized_randomness_never_repeat():
    from concurrent.futures import ThreadPoolExecutor

    from agora.core.ids import random_hex

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_id("task") for _ in range(2_000)], range(8)))
    ids = [i for batch in batches for i in batch]
    assert len(set(ids)) == len(ids)
    tokens = [random_hex(16) for _ in range(1_000)]  # a lease token's 16 bytes, across the pool's block boundaries
    assert len(set(tokens)) == len(tokens) and all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)


def test_a_forked_child_does_not_make_the_ids_its_parent_makes():
    import os

    new_id("msg")  # the parent's pool holds unused random bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out at once
        os.write(write, " ".join(new_id("msg") for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    parent = [new_id("msg") for _ in range(5)]
    assert len(child) == 5 and {c[12:] for c in child}.isdisjoint(p[12:] for p in parent)
