"""Identifiers: the documented shape, unique and in order within a process, drawn anew in a forked child."""

from __future__ import annotations

import os

from agora.core.ids import new_id


def test_ids_are_unique_ordered_and_a_forked_child_draws_its_own():
    ids = [new_id("msg") for _ in range(10_000)]
    assert len(set(ids)) == len(ids) and ids == sorted(ids)
    assert all(len(i) == len("msg_") + 16 and i.startswith("msg_") for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report an id and leave at once
        os.write(write, new_id("msg").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    parent = new_id("msg")
    assert child[4:10] != parent[4:10]  # another process prefix, so the two never count over the same ids
