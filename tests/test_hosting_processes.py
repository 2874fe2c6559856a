"""Hosting nodes: building agent packages and supervising instance processes, with real processes."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from agora.hosting.builds import BuildError, Builds
from agora.hosting.processes import Instance, RestartPolicy, State

PYTHON = shlex.quote(sys.executable)


def _script(workdir: Path, name: str, code: str) -> str:
    """Write a Python script into workdir; the command that runs it."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_text(textwrap.dedent(code))
    return f"{PYTHON} {name}"


async def _until(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
async def instances() -> AsyncIterator[list[Instance]]:
    """Instances to terminate after the test, whatever happened."""
    made: list[Instance] = []
    yield made
    for instance in made:
        await instance.terminate(grace=0.5)


def _instance(made: list[Instance], workdir: Path, command: str, **kwargs) -> Instance:
    instance = Instance(f"inst-{len(made)}", workdir, command, dict(os.environ), **kwargs)
    made.append(instance)
    return instance


# ---- builds ----


async def test_build_from_directory_runs_once_and_survives_restart(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "app.py").write_text("print('hi')\n")
    marker = tmp_path / "built.log"
    config = {
        "type": "python",
        "build_command": 'sleep 0.3; echo built >> "$MARKER"; command -v python > which.txt; echo out > made.txt',
        "start_command": "python app.py",
        "env_vars": {"MARKER": str(marker)},
    }
    builds = Builds(tmp_path / "builds")
    paths = await asyncio.gather(*(builds.ensure("listing-1", 3, {"url": str(source)}, config) for _ in range(5)))

    assert set(paths) == {tmp_path / "builds" / "listing-1" / "v3"}
    package = paths[0]
    assert marker.read_text().splitlines() == ["built"]
    assert (package / "app.py").read_text() == "print('hi')\n"
    assert (package / "made.txt").read_text() == "out\n"
    assert Path((package / "which.txt").read_text().strip()).parent == Path(sys.executable).parent
    assert os.listdir(package.parent) == ["v3"]  # no staging directory left

    # A restarted node (a new Builds on the same root) finds the finished build.
    again = await Builds(tmp_path / "builds").ensure("listing-1", 3, {"url": source.as_uri()}, config)
    assert again == package
    assert marker.read_text().splitlines() == ["built"]

    # A workdir is a private copy: writing into it leaves the build alone.
    workdir = tmp_path / "instances" / "i1"
    await builds.prepare_workdir(package, workdir)
    (workdir / "app.py").write_text("changed\n")
    assert (package / "app.py").read_text() == "print('hi')\n"
    assert (workdir / "made.txt").read_text() == "out\n"
    assert sorted(os.listdir(workdir.parent)) == ["i1"]


async def test_failed_build_raises_with_output_tail_and_leaves_nothing(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "app.py").write_text("")
    config = {
        "type": "custom",
        "build_command": "for i in $(seq 1 50); do echo line $i; done; echo oops >&2; exit 3",
        "start_command": "true",
        "env_vars": {},
    }
    builds = Builds(tmp_path / "builds", tail_lines=5)
    with pytest.raises(BuildError) as caught:
        await builds.ensure("l", 1, {"url": str(source), "branch": None}, config)
    assert "exited with code 3" in str(caught.value)
    assert caught.value.output_tail == ["line 47", "line 48", "line 49", "line 50", "oops"]
    assert os.listdir(tmp_path / "builds" / "l") == []


async def test_build_timeout_kills_the_build(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    pid_file = tmp_path / "build.pid"
    config = {"type": "custom", "build_command": f"echo $$ > {pid_file}; sleep 30; true", "env_vars": {}}
    builds = Builds(tmp_path / "builds", timeout=0.5)
    started = time.monotonic()
    with pytest.raises(BuildError, match=r"build timed out after 0\.5s"):
        await builds.ensure("l", 1, {"url": str(source)}, config)
    assert time.monotonic() - started < 5
    assert _gone(int(pid_file.read_text()))
    assert os.listdir(tmp_path / "builds" / "l") == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
async def test_build_from_local_git_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
            cwd=repo, check=True, capture_output=True,
        )

    git("init", "-q")
    (repo / "main.txt").write_text("main\n")
    git("add", "main.txt")
    git("commit", "-q", "-m", "first")
    git("checkout", "-q", "-b", "feature")
    (repo / "feature.txt").write_text("feature\n")
    git("add", "feature.txt")
    git("commit", "-q", "-m", "second")
    git("checkout", "-q", "-")
    (repo / "uncommitted.txt").write_text("not in any commit\n")

    builds = Builds(tmp_path / "builds")
    config = {"type": "custom", "build_command": "ls > listing.txt", "env_vars": {}}
    package = await builds.ensure("g", 1, {"url": repo.as_uri(), "branch": "feature"}, config)
    assert (package / "feature.txt").read_text() == "feature\n"
    assert (package / ".git").is_dir()
    assert not (package / "uncommitted.txt").exists()  # cloned, not copied
    assert "main.txt" in (package / "listing.txt").read_text().split()

    with pytest.raises(BuildError, match="git clone failed") as caught:
        await builds.ensure("g", 2, {"url": str(repo), "branch": "no-such-branch"}, config)
    assert any("no-such-branch" in line for line in caught.value.output_tail)


# ---- instances ----


COUNTER = """
    import os, time
    n = 0
    while True:
        n += 1
        with open("counter.tmp", "w") as f:
            f.write(str(n))
        os.replace("counter.tmp", "counter")
        time.sleep(0.05)
"""


async def test_pause_really_stops_the_process_and_resume_continues(tmp_path: Path, instances: list[Instance]) -> None:
    seen: list[State] = []

    async def on_change(instance: Instance) -> None:
        seen.append(instance.state)

    instance = _instance(instances, tmp_path, _script(tmp_path, "counter.py", COUNTER), on_change=on_change)
    await instance.start()
    assert instance.state is State.running
    assert instance.pid is not None and psutil.Process(instance.pid).is_running()
    counter = tmp_path / "counter"
    await _until(counter.exists)

    await instance.pause()
    assert instance.state is State.paused
    process = psutil.Process(instance.pid)
    await _until(lambda: process.status() == psutil.STATUS_STOPPED)
    frozen = counter.read_text()
    await asyncio.sleep(0.5)
    assert counter.read_text() == frozen
    with pytest.raises(RuntimeError):
        await instance.pause()

    await instance.resume()
    assert instance.state is State.running
    await _until(lambda: int(counter.read_text()) > int(frozen), timeout=2)
    with pytest.raises(RuntimeError):
        await instance.resume()

    pid = instance.pid
    await instance.terminate(grace=2)
    assert instance.state is State.stopped and instance.pid is None
    assert _gone(pid)
    assert seen == [State.starting, State.running, State.paused, State.running, State.stopping, State.stopped]


async def test_terminate_honours_sigterm_and_does_not_restart(tmp_path: Path, instances: list[Instance]) -> None:
    command = _script(tmp_path, "polite.py", """
        import pathlib, signal, sys, time
        def bye(*_):
            pathlib.Path("bye").write_text("term")
            sys.exit(0)
        signal.signal(signal.SIGTERM, bye)
        pathlib.Path("ready").write_text("1")
        while True:
            time.sleep(0.05)
    """)
    instance = _instance(instances, tmp_path, command)
    await instance.start()
    await _until((tmp_path / "ready").exists)
    started = time.monotonic()
    await asyncio.gather(instance.terminate(grace=5), instance.terminate(grace=5))  # idempotent
    assert time.monotonic() - started < 2
    assert (tmp_path / "bye").read_text() == "term"
    assert instance.state is State.stopped and instance.exit_code == 0
    await asyncio.sleep(0.2)
    assert instance.state is State.stopped and instance.restarts == 0
    await instance.terminate()
    assert instance.state is State.stopped


async def test_terminate_kills_a_group_that_ignores_sigterm(tmp_path: Path, instances: list[Instance]) -> None:
    command = _script(tmp_path, "stubborn.py", f"""
        import pathlib, signal, subprocess, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([{sys.executable!r}, "-c",
            "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "pathlib.Path('grandchild').write_text('1'); time.sleep(60)"])
        pathlib.Path("grandchild.pid").write_text(str(grandchild.pid))
        while True:
            time.sleep(0.05)
    """)
    instance = _instance(instances, tmp_path, command)
    await instance.start()
    await _until((tmp_path / "grandchild").exists)
    leader, grandchild = instance.pid, int((tmp_path / "grandchild.pid").read_text())
    assert leader is not None

    started = time.monotonic()
    await instance.terminate(grace=0.5)
    assert 0.5 <= time.monotonic() - started < 3
    assert instance.state is State.stopped
    assert instance.exit_code == -9
    assert _gone(leader)
    await _until(lambda: _gone(grandchild), timeout=2)


async def test_crash_restarts_with_backoff_then_fails(tmp_path: Path, instances: list[Instance]) -> None:
    seen: list[State] = []

    async def on_change(instance: Instance) -> None:
        seen.append(instance.state)
        if instance.state is State.restarting:
            raise RuntimeError("a broken callback must not stop the supervisor")

    command = _script(tmp_path, "crash.py", """
        import sys
        print("starting up")
        print("boom", file=sys.stderr)
        sys.exit(1)
    """)
    policy = RestartPolicy(max_restarts=2, backoff=0.05, window=60)
    instance = _instance(instances, tmp_path, command, policy=policy, on_change=on_change)
    await instance.start()
    await _until(lambda: instance.state is State.failed)

    assert instance.restarts == 2
    assert instance.exit_code == 1 and instance.pid is None
    assert instance.last_error is not None and "exited with code 1" in instance.last_error
    assert instance.output_tail() == ["starting up", "boom"] * 3
    assert seen == [State.starting, *[State.running, State.restarting] * 2, State.running, State.failed]


async def test_crash_is_seen_while_a_grandchild_holds_the_output(tmp_path: Path, instances: list[Instance]) -> None:
    command = _script(tmp_path, "leaver.py", f"""
        import pathlib, subprocess
        child = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(60)"])
        pathlib.Path("grandchild.pid").write_text(str(child.pid))
        print("leaving", flush=True)
        raise SystemExit(2)
    """)
    instance = _instance(instances, tmp_path, command, policy=RestartPolicy(max_restarts=0))
    await instance.start()
    await _until(lambda: instance.state is State.failed, timeout=3)
    assert instance.exit_code == 2
    assert instance.last_error == "exited with code 2; gave up after 0 restarts"
    assert instance.output_tail() == ["leaving"]
    await _until(lambda: _gone(int((tmp_path / "grandchild.pid").read_text())), timeout=2)


async def test_start_failure_marks_failed(tmp_path: Path, instances: list[Instance]) -> None:
    instance = _instance(instances, tmp_path / "missing", "true")
    await instance.start()
    assert instance.state is State.failed
    assert instance.last_error is not None and instance.last_error.startswith("failed to start")
    assert instance.sample() is None


async def test_sample_measures_the_process_tree(tmp_path: Path, instances: list[Instance]) -> None:
    command = _script(tmp_path, "tree.py", f"""
        import pathlib, subprocess, time
        child = subprocess.Popen([{sys.executable!r}, "-c", "import time; time.sleep(60)"])
        pathlib.Path("ready").write_text("1")
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # busy on purpose: the sample must see CPU used
            sum(range(1000))
        time.sleep(60)
    """)
    instance = _instance(instances, tmp_path, command)
    assert instance.sample() is None
    await instance.start()
    await _until((tmp_path / "ready").exists)
    await asyncio.sleep(0.3)
    usage = instance.sample()
    assert usage is not None
    assert usage.processes == 2
    assert usage.memory_mb > 5
    assert usage.cpu_percent > 10  # the leader spun for most of the time since it started


async def test_memory_limit_kills_and_counts_as_crash(tmp_path: Path, instances: list[Instance]) -> None:
    command = _script(tmp_path, "hog.py", """
        import time
        data = b"x" * (200 * 1024 * 1024)
        time.sleep(60)
    """)
    instance = _instance(instances, tmp_path, command, memory_limit_mb=50, policy=RestartPolicy(max_restarts=0))
    await instance.start()
    deadline = time.monotonic() + 5
    while instance.state is not State.failed and time.monotonic() < deadline:
        instance.sample()
        await asyncio.sleep(0.1)
    assert instance.state is State.failed
    assert instance.last_error is not None and "memory limit exceeded" in instance.last_error
    assert "limit 50 MB" in instance.last_error
    assert instance.exit_code == -9


# ---- cgroups ----


def test_cgroup_v2_limits_are_written_where_the_kernel_reads_them(tmp_path: Path) -> None:
    """cgroup v2 as a systemd machine has it (a fake tree: the files a v2 kernel reads): the node's cgroup is made
    under its own with the controllers delegated, an instance's gets memory.max and cpu.max, and OOM kills are counted."""
    from agora.hosting.cgroups import CgroupTree

    proc, mount = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    (proc / "cgroup").write_text("0::/system.slice/agora.service\n")
    (proc / "mountinfo").write_text(f"30 23 0:26 / {mount} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n")
    own = mount / "system.slice" / "agora.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")

    tree, why = CgroupTree.create("t1", proc=proc)
    assert tree is not None and why == "" and tree.describe("memory") == tree.describe("cpu") == "cgroup v2"
    assert (own / "cgroup.subtree_control").read_text() == "+cpu +memory"
    assert (own / "agora-t1" / "cgroup.subtree_control").read_text() == "+cpu +memory"

    cgroup = tree.make("inst_1", memory_mb=64, cpu=0.25)
    path = own / "agora-t1" / "inst_1"
    assert (path / "memory.max").read_text() == str(64 * 2**20)
    assert (path / "cpu.max").read_text() == "25000 100000"
    assert cgroup.procs_files == [path / "cgroup.procs"]
    (path / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroup.oom_kills() == 1


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is not installed")
async def test_without_cgroups_the_memory_limit_is_an_rlimit(tmp_path: Path, instances: list[Instance]) -> None:
    """Where the node may not make cgroups, an allocation past the limit fails in the process itself."""
    from agora.hosting.sandbox import Limits, Sandbox

    confinement = Sandbox().confine(tmp_path, None, Limits(memory_mb=100))
    assert confinement.isolation == {"sandbox": "none", "uid": None, "memory": "rlimit", "cpu": "none"}
    command = _script(tmp_path, "hog.py", """
        data = bytearray(300 * 1024 * 1024)
        print("allocated")
    """)
    instance = _instance(instances, tmp_path, command, confinement=confinement, policy=RestartPolicy(max_restarts=0))
    await instance.start()
    await _until(lambda: instance.state is State.failed)
    assert any("MemoryError" in line for line in instance.output_tail()), instance.output_tail()
    assert "allocated" not in instance.output_tail()
