"""Building marketplace agent packages on a hosting node, once per listing version.

A build fetches the listing's source (a copy of a local directory, or a shallow git clone) into a staging
directory, runs the build command there, and is renamed into ``root/<listing_id>/v<version>/`` only once all
of it succeeded, so a half-done build is never used. One ``Builds`` per root: the locks are per object.

A build is bounded: in time (``timeout``, for all of it) and in bytes on disk (``max_bytes``, the source and what the
build command writes, checked per file while copying and by measuring while a command runs); it never reads the
node's own directories (a repository path that contains one, or lies inside one, is refused); and cancelling it
(the node stopping, the instance terminated) stops it at once: its commands are killed, a copy stops at the next
file or MiB. The build command is listing code: it runs confined like an instance (see ``sandbox``), as a user of
its own when the node is root, and what it leaves must be its own (no link to a file of someone else's).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from agora.core.disk import is_storage_full
from agora.core.egress import Egress, EgressPolicy, EgressRefused, display
from agora.observability import metrics

from .files import Budget, TooLarge, copy_tree, disk_usage, entries, in_thread
from .processes import GroupProcess, describe_exit
from .sandbox import Limits, Sandbox, kill_processes_of

log = logging.getLogger("agora.hosting")

BUILT_MARKER = ".agora-build.json"  # written last, inside the build: its presence means "built"
DEFAULT_MAX_BYTES = 1 << 30
_SIZE_POLL = 0.5  # seconds between measurements of a running step's output
_XFSZ = (-signal.SIGXFSZ, 128 + signal.SIGXFSZ)
FULL_BELOW = 1 << 20  # bytes left where builds go under which a failed build is taken for a full disk  # a step killed for writing past its file size limit (bare, or in bwrap)


class BuildError(Exception):
    """A build that failed; .output_tail holds its last output lines; .reason is ``storage_full`` when the node's disk
    had no room for it."""

    def __init__(self, message: str, output_tail: list[str], reason: str | None = None) -> None:
        super().__init__(message)
        self.output_tail = output_tail
        self.reason = reason


class Builds:
    """The built packages of the listings this node hosts, under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        timeout: float = 600.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        tail_lines: int = 40,
        sandbox: Sandbox | None = None,
        protected: Mapping[Path, str] | None = None,
        egress: Egress | None = None,
    ) -> None:
        self.root = root
        self.egress = egress or EgressPolicy().acting_for(admin=False)  # who published a listing is not known here
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._tail_lines = tail_lines
        self._sandbox = sandbox or Sandbox()
        # Directories no repository may contain or lie in: copying one would copy the node into itself, or its secrets.
        self._protected = {p.resolve(): what for p, what in {**(protected or {}), root: "the node's builds"}.items()}
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    async def ensure(self, listing_id: str, version: int, repository: dict, build_config: dict) -> Path:
        """The directory of this listing version's built package, building it the first time.

        ``repository`` is ``{"url", "branch"}``; ``build_config`` supplies ``build_command`` and ``env_vars``.
        Concurrent calls for one listing version build it once; a node restart finds the build's marker file.
        """
        final = self._path(listing_id, version)
        async with self._locks.setdefault((listing_id, version), asyncio.Lock()):
            if not (final / BUILT_MARKER).is_file():
                await self._build(final, repository, build_config)
        return final

    async def prepare_workdir(self, build_dir: Path, workdir: Path, uid: int | None = None) -> None:
        """Give an instance its own working directory: a copy of the build, owned by ``uid`` (its user) if given.

        Files are cloned copy-on-write where the filesystem can, else copied: never hard-linked, as an
        instance writing into a shared inode would change the build and every other instance of it.
        An existing workdir is kept as it is (it holds the instance's state). A disk with no room for it is a
        ``BuildError`` (reason ``storage_full``), and what was copied goes.
        """
        if workdir.exists():
            return
        workdir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.prepare-", dir=workdir.parent))
        try:
            await in_thread(lambda stop: copy_tree(build_dir, staging, Budget(None), stop, owner=uid, clone=True))
            (staging / BUILT_MARKER).unlink(missing_ok=True)
            if uid is not None:
                os.chown(staging, uid, uid)
            staging.rename(workdir)
        except BaseException as exc:
            full = self._disk_full(exc, deque()) if isinstance(exc, OSError) else None
            await _remove(staging)
            if full is not None:
                raise full from exc
            raise

    def _path(self, listing_id: str, version: int) -> Path:
        if listing_id in ("", ".", "..") or "/" in listing_id or "\0" in listing_id:
            raise ValueError(f"invalid listing id {listing_id!r}")
        return self.root / listing_id / f"v{int(version)}"

    async def _build(self, final: Path, repository: dict, build_config: dict) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        final.parent.chmod(0o711)  # a build's user passes through to its staging directory, sees nothing else
        await in_thread(lambda _stop: _clear(final))
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=final.parent))
        tail: deque[str] = deque(maxlen=self._tail_lines)
        deadline = time.monotonic() + self._timeout
        uids, key = self._sandbox.uids, f"build:{final.parent.name}/{final.name}"
        uid = uids.take(key) if uids is not None else None
        try:
            if uid is not None:
                os.chown(staging, uid, uid)
            await self._fetch(repository, staging, tail, deadline, uid)
            if command := build_config.get("build_command"):
                env = isolated_env(staging, build_config.get("env_vars") or {})
                used = await in_thread(lambda stop: disk_usage(staging, stop))
                confined = self._sandbox.confine(staging, uid, Limits(file_bytes=max(1, self._max_bytes - used)))
                await self._run("build", confined.argv(["/bin/sh", "-c", command]), staging, env, tail, deadline)
            if uid is not None:
                kill_processes_of(uid)  # anything the build left running (without a sandbox, it could leave the group)
            await in_thread(lambda stop: _reclaim(staging, uid, stop))
            marker = {"repository": repository["url"], "branch": repository.get("branch"), "built_at": time.time()}
            (staging / BUILT_MARKER).unlink(missing_ok=True)  # the build's own file of that name is not the marker
            fd = os.open(staging / BUILT_MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(marker))
            staging.chmod(0o700)
            staging.rename(final)
        except BaseException as exc:
            if uid is not None:
                kill_processes_of(uid)
            full = self._disk_full(exc, tail) if isinstance(exc, (BuildError, OSError)) else None  # (before the staging goes)
            await _remove(staging)
            if full is not None:
                raise full from exc
            raise
        finally:
            if uids is not None:
                uids.release(key)

    def _disk_full(self, exc: BaseException, tail: deque[str]) -> BuildError | None:
        """A build that failed for want of disk space: its copy or write said so (ENOSPC), or its command failed with
        less than ``FULL_BELOW`` bytes left where builds go (a command's own words for it vary). Counted and logged;
        the next build of it (the next instance placed here) starts afresh."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return None  # (the root itself is gone: not a full disk, and the build's own error says what happened)
        if not (is_storage_full(exc) or free < FULL_BELOW):
            return None
        metrics.STORAGE_FULL_REFUSALS.inc()
        log.error("disk full: a build failed", extra={"path": str(self.root), "free_bytes": free})
        return BuildError(
            f"the hosting node's disk is full ({free:,} bytes free where it builds): {exc}; the build is tried again "
            "when an instance is next placed here, once space is freed",
            getattr(exc, "output_tail", None) or list(tail), reason="storage_full",
        )  # fmt: skip

    async def _fetch(self, repository: dict, dest: Path, tail: deque[str], deadline: float, uid: int | None) -> None:
        """Copy a local non-git directory; clone anything else (``--`` keeps a URL from passing as an option), through
        the egress policy (``Egress.git_options``: an http(s) repository only from an address it permits, pinned)."""
        url = repository["url"]
        local = _local_path(url)
        if local is not None:
            self._refuse_protected(url, local)
        if local is not None and local.is_dir() and not _is_git_repository(local):
            budget = Budget(self._max_bytes)
            try:
                await asyncio.wait_for(in_thread(lambda stop: copy_tree(local, dest, budget, stop, owner=uid)), deadline - time.monotonic())
            except TooLarge:
                raise BuildError(f"the repository {local} is larger than the build size limit of {self._max_bytes} bytes", list(tail)) from None
            except TimeoutError:
                raise BuildError(f"copying {local} timed out after {self._timeout:g}s", list(tail)) from None
            except OSError as exc:
                raise BuildError(f"copying {local} failed: {exc}", list(tail)) from exc
            return
        try:
            options, url = await self.egress.git_options(url)
        except (EgressRefused, ValueError, TimeoutError) as exc:  # the reason is logged; the build says only no
            log.info("listing repository %s refused: %s", display(url), exc or "looking it up timed out")
            raise BuildError(f"this node does not fetch {url}: a repository must be on a public http(s) address", list(tail)) from None
        argv = ["git", *options, "clone", "--depth", "1"]
        if branch := repository.get("branch"):
            argv += ["--branch", branch]
        # Fail rather than wait for credentials; no proxy from the environment (the address checked is the one
        # connected to); no large-file filter fetching from wherever the repository says.
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env |= {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1"}
        await self._run("git clone", [*argv, "--", url, str(dest)], dest.parent, env, tail, deadline, measure=dest)
        await in_thread(lambda _stop: self._sandbox.own(dest, uid))

    def _refuse_protected(self, url: str, local: Path) -> None:
        real = local.resolve()
        clashes = [
            f"{'contains' if path.is_relative_to(real) else 'is inside'} {what}"  # its path is not the customer's business
            for path, what in self._protected.items()
            if real.is_relative_to(path) or path.is_relative_to(real)
        ]
        if clashes:
            raise BuildError(f"the repository {url} {' and '.join(clashes)}: refused", [])

    async def _run(
        self, what: str, argv: list[str], cwd: Path, env: dict[str, str], tail: deque[str], deadline: float,
        measure: Path | None = None,
    ) -> None:  # fmt: skip
        """Run a step in a process group of its own, measuring what it writes (``measure``, default ``cwd``); on
        timeout, a size past the limit, failure or cancellation none of it stays."""
        try:
            child = await GroupProcess.spawn(argv, cwd=cwd, env=env, output=tail)
        except OSError as exc:
            raise BuildError(f"{what} could not start: {exc}", list(tail)) from exc
        code: int | None = None  # stays None when the step is stopped
        too_large = False
        try:
            while (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    code = await asyncio.wait_for(child.wait(), min(_SIZE_POLL, left))
                    break
                if await in_thread(lambda stop: disk_usage(measure or cwd, stop)) > self._max_bytes:
                    too_large = True
                    break
        finally:
            await child.reap()  # also kills what the step left running in the background
        if too_large or code in _XFSZ:
            raise BuildError(f"{what} wrote more than the build size limit of {self._max_bytes} bytes", list(tail))
        if code is None:
            raise BuildError(f"{what} timed out after {self._timeout:g}s", list(tail))
        if code != 0:
            raise BuildError(f"{what} failed: {describe_exit(code)}", list(tail))


def isolated_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """What a build step or an instance runs with: never the node's own environment (it may hold the node's keys).
    This interpreter's directory comes first on PATH, so ``python`` and ``pip`` are the node's."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    return {"PATH": path, "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8"), "PYTHONUNBUFFERED": "1", **extra}


def _reclaim(staging: Path, uid: int | None, stop: threading.Event) -> None:
    """Make what a build left the node's: everything must be the build user's own (a hard link to a file of anyone
    else's would carry that file into every instance), then it is chowned back to the node's user."""
    if uid is None:
        return
    me = os.geteuid()
    for entry in [staging, *entries(staging, stop)]:
        st = entry.lstat()
        if st.st_uid != uid:
            raise BuildError(f"the build left {entry.relative_to(staging)}, which is not its own: refused", [])
        os.lchown(entry, me, os.getegid())
        if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            entry.chmod(st.st_mode & 0o1777)


async def _remove(path: Path) -> None:
    """Remove a directory tree without blocking the event loop (a build can leave many files)."""
    await asyncio.shield(in_thread(lambda _stop: shutil.rmtree(path, ignore_errors=True)))


def _local_path(url: str) -> Path | None:
    """The path an absolute path or ``file://`` URL names; None for anything else."""
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    if url.startswith("/"):
        return Path(url)
    return None


def _is_git_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _clear(final: Path) -> None:
    """Remove what a build interrupted by a node crash left behind."""
    for stale in final.parent.glob(f".{final.name}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)
