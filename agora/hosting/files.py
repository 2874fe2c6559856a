"""Bounded, cancellable file work for builds: copying a tree within a byte budget, measuring what a directory holds,
and running such work in a daemon thread that a cancelled caller stops (a copy checks its stop flag per file and MiB).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

_FICLONE = 0x40049409  # Linux ioctl: share the source file's blocks copy-on-write (btrfs, XFS, ...)
_CHUNK = 1 << 20  # a copy checks its budget and whether it is cancelled at least this often
_ENTRY_BYTES = 4096  # what a directory or link is counted as against the budget
T = TypeVar("T")


class TooLarge(Exception):
    """A copy or a build went past its byte budget."""


class Stopped(Exception):
    """A copy or a walk was told to stop."""


class Budget:
    """Bytes a copy may still write; ``limit`` None: no limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit, self.used = limit, 0

    def charge(self, size: int) -> None:
        self.used += size
        if self.limit is not None and self.used > self.limit:
            raise TooLarge(f"more than {self.limit} bytes")


async def in_thread(work: Callable[[threading.Event], T]) -> T:
    """Run ``work(stop)`` in a daemon thread of its own; if the caller is cancelled, ``stop`` is set and the thread
    given a moment to notice (``work`` checks it often). Unlike ``asyncio.to_thread``, a thread left behind never
    holds up the process's exit."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    stop = threading.Event()

    def settle(outcome: Callable[[T | BaseException], None], value: T | BaseException) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(lambda: None if done.done() else outcome(value))

    def run() -> None:
        try:
            result = work(stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
            settle(done.set_exception, exc)  # type: ignore[arg-type]
        else:
            settle(done.set_result, result)

    threading.Thread(target=run, name="agora-hosting-io", daemon=True).start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        stop.set()
        await asyncio.wait([done], timeout=5.0)
        if done.done() and not done.cancelled():
            done.exception()  # retrieved: a Stopped from the thread is the expected outcome
        raise


def copy_tree(source: Path, dest: Path, budget: Budget, stop: threading.Event, *, owner: int | None = None, clone: bool = False) -> None:
    """Copy what is in ``source`` into the directory ``dest``: directories, regular files and symbolic links (as links,
    never followed). Other kinds (FIFOs, sockets, devices) are left out: reading one could block for ever. Set-id
    bits are dropped; with ``owner``, everything is chowned to that uid. ``stop`` and ``budget`` are checked for
    every entry and every MiB."""
    directories: list[tuple[Path, os.stat_result]] = []
    pending = [(source, dest)]
    while pending:
        src_dir, dst_dir = pending.pop()
        with os.scandir(src_dir) as entries:
            for entry in entries:
                if stop.is_set():
                    raise Stopped()
                src, dst = Path(entry.path), dst_dir / entry.name
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    budget.charge(_ENTRY_BYTES)
                    dst.mkdir(mode=0o700)
                    directories.append((dst, st))
                    pending.append((src, dst))
                elif stat.S_ISLNK(st.st_mode):
                    budget.charge(_ENTRY_BYTES)
                    os.symlink(os.readlink(src), dst)
                    if owner is not None:
                        os.lchown(dst, owner, owner)
                elif stat.S_ISREG(st.st_mode):
                    _copy_file(src, dst, st, budget, stop, owner, clone)
    for path, st in reversed(directories):  # modes last: a read-only directory is still written into first
        path.chmod(st.st_mode & 0o1777)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        if owner is not None:
            os.chown(path, owner, owner)


def _copy_file(src: Path, dst: Path, st: os.stat_result, budget: Budget, stop: threading.Event, owner: int | None, clone: bool) -> None:
    source = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        target = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            if not (clone and _clone(source, target, st, budget)):
                while chunk := os.read(source, _CHUNK):
                    if stop.is_set():
                        raise Stopped()
                    budget.charge(len(chunk))
                    os.write(target, chunk)
            os.fchmod(target, st.st_mode & 0o1777)
            if owner is not None:
                os.fchown(target, owner, owner)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(target)
    finally:
        os.close(source)


def _clone(source: int, target: int, st: os.stat_result, budget: Budget) -> bool:
    """Share the source's blocks copy-on-write; False where the filesystem cannot."""
    try:
        fcntl.ioctl(target, _FICLONE, source)
    except OSError:
        return False
    budget.charge(st.st_size)
    return True


def disk_usage(path: Path, stop: threading.Event) -> int:
    """Bytes on disk under ``path`` (links not followed)."""
    total = 0
    pending = [path]
    while pending:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(pending.pop()) as entries:
            for entry in entries:
                if stop.is_set():
                    raise Stopped()
                with contextlib.suppress(FileNotFoundError):
                    st = entry.stat(follow_symlinks=False)
                    total += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        pending.append(Path(entry.path))
    return total


def entries(path: Path, stop: threading.Event | None = None) -> list[Path]:
    """Everything under ``path``, links not followed."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(path):
        if stop is not None and stop.is_set():
            raise Stopped()
        found += [Path(dirpath, name) for name in dirnames + filenames]
    return found
