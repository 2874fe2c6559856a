"""Fault: the disk fills (issue 59, fault 3). A hub on SQLite whose data directory is a small filesystem of the test's
own (tmpfs): once a ballast file takes the last of its space, writes are refused with 507 ``storage_full`` and keep
nothing, reads go on, the hub stays up and says so in its metrics; when the ballast goes, writes go through again by
themselves, every acknowledged write is there, and the database passes SQLite's integrity check."""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..conftest import call, expect_error, metric, ok, unique
from ..hubproc import HubProcess

DISK_MB = 48
CHUNK = 1 << 20


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A filesystem of ``DISK_MB`` MiB (tmpfs), mounted for the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"a small filesystem could not be mounted here (tmpfs needs CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path: Path) -> None:
    """Take every byte left on ``path``'s filesystem."""
    with open(path, "wb", buffering=0) as ballast:  # (unbuffered: nothing left to fail at close)
        for size in (CHUNK, 4096, 1):  # the last bytes, smaller and smaller
            with contextlib.suppress(OSError):  # (ENOSPC ends each size's run)
                while True:
                    ballast.write(b"\0" * size)


def test_a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_when_space_is_freed(small_disk: Path) -> None:
    hub = HubProcess(small_disk / "hub").start()
    try:
        with hub.client() as admin:
            sink = ok(call(admin, "agora.agents.register", agent_name=unique("sink")))["agent_id"]
            content = {"text": "x" * 60_000}  # a WAL frame run per send: the WAL must grow for it
            kept = [ok(call(admin, "agora.messaging.send", to_agent=sink, content=content))["message_id"] for _ in range(3)]
            fill(small_disk / "ballast")

            refused = None
            for _ in range(200):  # the WAL's own free space goes first
                answer = call(admin, "agora.messaging.send", to_agent=sink, content=content)
                if answer.status_code != 200:
                    refused = answer
                    break
                kept.append(answer.json()["message_id"])
            assert refused is not None, "the disk never refused a write"
            error = expect_error(refused, 507, "storage_full")
            assert error["details"]["reason"] == "storage_full" and error["details"]["free_bytes"] < CHUNK
            expect_error(call(admin, "agora.agents.register", agent_name=unique("late")), 507, "storage_full")
            assert ok(call(admin, "agora.agents.get", agent=sink))["agent_id"] == sink  # reads go on
            assert ok(admin.get("/health")) and metric(hub, "agora_storage_full_refusals_total") >= 2

            (small_disk / "ballast").unlink()
            again = ok(call(admin, "agora.messaging.send", to_agent=sink, content={"n": "after"}))  # no restart needed
            kept.append(again["message_id"])
            found = ok(call(admin, "agora.messaging.search", to_agent=sink, limit=500))["messages"]
        assert {m["message_id"] for m in found} == set(kept)  # every acknowledged write, and nothing refused
    finally:
        hub.stop()
    with contextlib.closing(sqlite3.connect(small_disk / "hub" / "agora.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_the_full_disk_error_is_known_by_its_errno() -> None:
    """SQLite's SQLITE_FULL and the OS's ENOSPC, however wrapped, are a full disk; other failures are not."""
    from sqlalchemy.exc import OperationalError

    from agora.core.disk import is_storage_full

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert is_storage_full(OperationalError("INSERT", {}, full))
    assert is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY  # type: ignore[attr-defined]
    assert not is_storage_full(OperationalError("INSERT", {}, locked)) and not is_storage_full(OSError(errno.EIO, "I/O error"))


async def test_a_build_the_nodes_disk_has_no_room_for_fails_as_storage_full_and_is_built_once_space_is_freed(small_disk: Path, tmp_path: Path) -> None:
    from agora.hosting.builds import BuildError, Builds

    source = tmp_path / "source"
    source.mkdir()
    (source / "model.bin").write_bytes(b"x" * 8 * CHUNK)
    builds = Builds(small_disk / "builds")
    (small_disk / "builds").mkdir()
    fill(small_disk / "ballast")
    config = {"type": "custom", "build_command": None, "env_vars": {}}
    with pytest.raises(BuildError) as failed:
        await builds.ensure("lst_full", 1, {"url": str(source)}, config)
    assert failed.value.reason == "storage_full" and "disk is full" in str(failed.value), str(failed.value)
    assert [p.name for p in (small_disk / "builds" / "lst_full").iterdir()] == []  # the half-done build is gone

    (small_disk / "ballast").unlink()
    built = await builds.ensure("lst_full", 1, {"url": str(source)}, config)  # the same builds, no restart
    assert (built / "model.bin").stat().st_size == 8 * CHUNK
