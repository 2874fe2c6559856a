"""Builds have bounds and shutdown has an end (issue 24, item 11): a repository that contains (or lies in) the node's or
the hub's directory is refused instead of being copied into itself; a build is held to a size and a time limit; a
build under way is cancelled at once (its copy, its commands); ``agora serve`` stopped during an endless build exits
within ``--shutdown-timeout``; and whatever still runs when that time is up is killed with the process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from agora.hosting.builds import BuildError, Builds

from ..conftest import ok, until
from ..hubproc import HubProcess
from ..test_marketplace import NODE_ENV, _online, listing

MiB = 1 << 20


def _source(tmp_path: Path, files: dict[str, int]) -> Path:
    source = tmp_path / "source"
    source.mkdir(parents=True)
    for name, size in files.items():
        (source / name).write_bytes(b"x" * size)
    return source


def _command_lines(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


async def test_a_repository_holding_the_nodes_or_the_hubs_directory_is_refused(tmp_path: Path) -> None:
    hub_dir, node_dir = tmp_path / "hub", tmp_path / "hub" / "node"
    (hub_dir / "data").mkdir(parents=True)
    (hub_dir / "admin.key").write_text("secret")
    builds = Builds(node_dir / "builds", protected={node_dir: "the hosting node's directory", hub_dir: "the hub's data directory"})
    config = {"type": "custom", "build_command": None, "env_vars": {}}
    for url, words in (
        (str(tmp_path), "contains the hub's data directory"),  # the copy would hold the build itself: never ending
        (tmp_path.as_uri(), "contains the hub's data directory"),
        (str(hub_dir / "data"), "is inside the hub's data directory"),
        (str(node_dir), "the hosting node's directory"),
        (str(node_dir / "builds" / ".."), "the hosting node's directory"),
    ):
        with pytest.raises(BuildError, match="refused") as refused:
            await builds.ensure("l", 1, {"url": url}, config)
        assert words in str(refused.value), (url, str(refused.value))
    assert not any((node_dir / "builds" / "l").iterdir())


async def test_a_build_is_held_to_its_size_limit(tmp_path: Path) -> None:
    source = _source(tmp_path, {"small": 1000})
    big = _source(tmp_path / "big", {"a": MiB, "b": 2 * MiB})
    builds = Builds(tmp_path / "builds", max_bytes=2 * MiB)
    empty = {"type": "custom", "build_command": None, "env_vars": {}}
    with pytest.raises(BuildError, match="larger than the build size limit"):
        await builds.ensure("copy", 1, {"url": str(big)}, empty)

    one_file = {"type": "custom", "build_command": f"head -c {3 * MiB} /dev/zero > blob", "env_vars": {}}
    with pytest.raises(BuildError, match="more than the build size limit"):
        await builds.ensure("file", 1, {"url": str(source)}, one_file)

    started = time.monotonic()  # many small files, then waiting: measured while it runs, killed long before the sleep ends
    many = {"type": "custom", "build_command": "for i in $(seq 1 40); do head -c 100000 /dev/zero > f$i; done; sleep 30", "env_vars": {}}
    with pytest.raises(BuildError, match="more than the build size limit"):
        await builds.ensure("many", 1, {"url": str(source)}, many)
    assert time.monotonic() - started < 5
    for name in ("copy", "file", "many"):
        assert os.listdir(tmp_path / "builds" / name) == []  # nothing half-built stays


async def test_a_build_under_way_is_cancelled_at_once(tmp_path: Path) -> None:
    source = _source(tmp_path, {f"f{i}": 10_000 for i in range(3000)})
    builds = Builds(tmp_path / "builds")
    marker = f"endless-build-{os.getpid()}"
    config = {"type": "custom", "build_command": f"trap '' TERM; while :; do sleep 0.1; done # {marker}", "env_vars": {}}
    building = asyncio.ensure_future(builds.ensure("l", 1, {"url": str(source)}, config))
    deadline = time.monotonic() + 20
    while not _command_lines(marker) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _command_lines(marker), "the build command never ran"
    started = time.monotonic()
    building.cancel()
    with pytest.raises(asyncio.CancelledError):
        await building
    assert time.monotonic() - started < 3
    assert not _command_lines(marker), "the build command survived its cancellation"
    assert os.listdir(tmp_path / "builds" / "l") == []

    copying = asyncio.ensure_future(Builds(tmp_path / "builds2").ensure("l", 1, {"url": str(source)}, {**config, "build_command": None}))
    await asyncio.sleep(0.05)  # within the copy of 3000 files
    started = time.monotonic()
    copying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await copying
    assert time.monotonic() - started < 3
    assert os.listdir(tmp_path / "builds2" / "l") == []


def test_sigterm_during_an_endless_build_ends_agora_serve_within_its_shutdown_timeout(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", env={**NODE_ENV, "AGORA_SHUTDOWN_TIMEOUT": "5"}).start()
    marker = f"endless-serve-build-{os.getpid()}"
    try:
        with hub.client() as admin:
            until(lambda: _online(admin), "the hub's local hosting node never came online")
            endless = f"trap '' TERM; while :; do sleep 0.1; done # {marker}"
            published = ok(admin.post("/marketplace/agents", json=listing(build_config={"build_command": endless})))
            ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))
            until(lambda: _command_lines(marker), "the endless build never started")
        started = time.monotonic()
        assert hub.proc is not None
        hub.proc.send_signal(signal.SIGTERM)
        hub.proc.wait(15)
        assert time.monotonic() - started < 5 + 2
        until(lambda: not _command_lines(marker), "the build outlived the hub", timeout=3)
    finally:
        hub.stop()


def test_what_outlives_the_shutdown_timeout_is_killed_with_the_process(tmp_path: Path) -> None:
    """The deadline itself, where nothing cooperates: the event loop is blocked and a child ignores SIGTERM."""
    script = textwrap.dedent(f"""
        import asyncio, collections, pathlib, time
        from agora.hosting.processes import GroupProcess
        from agora.shutdown import ShutdownDeadline

        async def main():
            child = await GroupProcess.spawn(["/bin/sh", "-c", "trap '' TERM; sleep 60"], cwd=pathlib.Path("."),
                                             env={{}}, output=collections.deque())
            pathlib.Path({str(tmp_path / "child.pid")!r}).write_text(str(child.pid))
            ShutdownDeadline(1.0).arm()
            time.sleep(60)  # the loop is stuck: only the deadline's thread can end this

        asyncio.run(main())
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert done.returncode == 1, done.stderr
    assert 1.0 <= time.monotonic() - started < 10
    assert "shutdown did not finish within 1 s: killed 1 process group(s)" in done.stdout + done.stderr
    child = int((tmp_path / "child.pid").read_text())
    until(lambda: not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE, "the child survived")
