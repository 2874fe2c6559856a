"""Building marketplace agent packages on a hosting node, once per listing version.

A build fetches the listing's source (a copy of a local directory, or a shallow git clone) into a staging
directory, runs the build command there, and is renamed into ``root/<listing_id>/v<version>/`` only once all
of it succeeded, so a half-done build is never used. One ``Builds`` per root: the locks are per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urlparse

from .processes import GroupProcess, describe_exit

BUILT_MARKER = ".agora-build.json"  # written last, inside the build: its presence means "built"
_FICLONE = 0x40049409  # Linux ioctl: share the source file's blocks copy-on-write (btrfs, XFS, ...)


class BuildError(Exception):
    """A build that failed; .output_tail holds its last output lines."""

    def __init__(self, message: str, output_tail: list[str]) -> None:
        super().__init__(message)
        self.output_tail = output_tail


class Builds:
    """The built packages of the listings this node hosts, under ``root``."""

    def __init__(self, root: Path, *, timeout: float = 600.0, tail_lines: int = 40) -> None:
        self.root = root
        self._timeout = timeout
        self._tail_lines = tail_lines
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

    async def prepare_workdir(self, build_dir: Path, workdir: Path) -> None:
        """Give an instance its own working directory: a copy of the build.

        Files are cloned copy-on-write where the filesystem can, else copied: never hard-linked, as an
        instance writing into a shared inode would change the build and every other instance of it.
        An existing workdir is kept as it is (it holds the instance's state).
        """
        if workdir.exists():
            return
        workdir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{workdir.name}.prepare-", dir=workdir.parent))
        try:
            await asyncio.to_thread(_copy_tree, build_dir, staging)
            (staging / BUILT_MARKER).unlink(missing_ok=True)
            staging.rename(workdir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _path(self, listing_id: str, version: int) -> Path:
        if listing_id in ("", ".", "..") or "/" in listing_id or "\0" in listing_id:
            raise ValueError(f"invalid listing id {listing_id!r}")
        return self.root / listing_id / f"v{int(version)}"

    async def _build(self, final: Path, repository: dict, build_config: dict) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(_clear, final)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=final.parent))
        tail: deque[str] = deque(maxlen=self._tail_lines)
        try:
            await self._fetch(repository, staging, tail)
            if command := build_config.get("build_command"):
                env = isolated_env(staging, build_config.get("env_vars") or {})
                await self._run("build", ["/bin/sh", "-c", command], staging, env, tail)
            marker = {"repository": repository["url"], "branch": repository.get("branch"), "built_at": time.time()}
            (staging / BUILT_MARKER).write_text(json.dumps(marker))
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    async def _fetch(self, repository: dict, dest: Path, tail: deque[str]) -> None:
        """Copy a local non-git directory; clone anything else (``--`` keeps a URL from passing as an option)."""
        url = repository["url"]
        local = _local_directory(url)
        if local is not None and not _is_git_repository(local):
            try:
                await asyncio.to_thread(shutil.copytree, local, dest, symlinks=True, dirs_exist_ok=True)
            except OSError as exc:
                raise BuildError(f"copying {local} failed: {exc}", list(tail)) from exc
            return
        argv = ["git", "clone", "--depth", "1"]
        if branch := repository.get("branch"):
            argv += ["--branch", branch]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # fail rather than wait for credentials
        await self._run("git clone", [*argv, "--", url, str(dest)], dest.parent, env, tail)

    async def _run(self, what: str, argv: list[str], cwd: Path, env: dict[str, str], tail: deque[str]) -> None:
        """Run a step in a process group of its own; on timeout, failure or cancellation none of it stays."""
        try:
            child = await GroupProcess.spawn(argv, cwd=cwd, env=env, output=tail)
        except OSError as exc:
            raise BuildError(f"{what} could not start: {exc}", list(tail)) from exc
        code: int | None = None  # stays None when the step times out
        try:
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(child.wait(), self._timeout)
        finally:
            await child.reap()  # also kills what the step left running in the background
        if code is None:
            raise BuildError(f"{what} timed out after {self._timeout:g}s", list(tail))
        if code != 0:
            raise BuildError(f"{what} failed: {describe_exit(code)}", list(tail))


def isolated_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """What a build step or an instance runs with: never the node's own environment (it may hold the node's keys).
    This interpreter's directory comes first on PATH, so ``python`` and ``pip`` are the node's."""
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", os.defpath)])
    return {"PATH": path, "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8"), "PYTHONUNBUFFERED": "1", **extra}


def _local_directory(url: str) -> Path | None:
    """The directory an absolute path or ``file://`` URL names; None for anything else."""
    if url.startswith("file://"):
        path = Path(unquote(urlparse(url).path))
    elif url.startswith("/"):
        path = Path(url)
    else:
        return None
    return path if path.is_dir() else None


def _is_git_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _clear(final: Path) -> None:
    """Remove what a build interrupted by a node crash left behind."""
    for stale in final.parent.glob(f".{final.name}.build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():
        shutil.rmtree(final)


def _copy_tree(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True, copy_function=_clone_file)


def _clone_file(source: str, dest: str) -> None:
    """Copy a file, sharing its blocks copy-on-write where the filesystem can."""
    try:
        with open(source, "rb") as src, open(dest, "wb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
    except OSError:
        shutil.copy2(source, dest)
    else:
        shutil.copystat(source, dest)
