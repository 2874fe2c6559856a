"""Instance processes on a hosting node, each in a process group of its own, supervised and restarted after a crash.

An instance runs as ``/bin/sh -c "exec <command>"`` (or, for a small script such as ``test -f x || setup; run``,
``/bin/sh -c <script>``) started in a new session, so the command leads a new process group: pause, resume and terminate signal the whole group, and whatever the group still holds when
its leader exits is killed before a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, cast

import psutil

log = logging.getLogger(__name__)

_MAX_LINE = 64 * 1024  # output without a newline is cut into lines of this many bytes
_DRAIN = 1.0  # seconds to wait for the last output once the group has been killed
_POLL = 0.05  # seconds between checks that a process group is gone
_GONE = (ProcessLookupError, PermissionError)  # killpg errors meaning "no group of ours by that id"

# Every process group spawned here and not reaped yet, for kill_all_groups (called from another thread).
_LIVE_GROUPS: set[int] = set()
_LIVE_LOCK = threading.Lock()


def kill_all_groups() -> int:
    """SIGKILL every process group this process started and has not reaped: the last word of a shutdown that ran
    out of time. Safe from any thread; returns how many groups were signalled."""
    with _LIVE_LOCK:
        groups = list(_LIVE_GROUPS)
    for pgid in groups:
        with contextlib.suppress(*_GONE):
            os.killpg(pgid, signal.SIGKILL)
    return len(groups)


class Confinement(Protocol):
    """How an instance's process is confined (see ``sandbox.Confinement``)."""

    @property
    def memory_enforced(self) -> bool: ...

    def argv(self, argv: list[str]) -> list[str]: ...

    def spawned(self) -> None: ...

    def exit_reason(self) -> str | None: ...


@dataclass(frozen=True)
class Usage:
    cpu_percent: float  # summed over the process tree, since the previous sample
    memory_mb: float  # RSS summed over the tree
    processes: int


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 3  # restarts allowed within `window` seconds before giving up
    window: float = 300.0
    backoff: float = 1.0  # first delay; doubles with each consecutive quick exit, capped at backoff_cap
    backoff_cap: float = 30.0
    min_uptime: float = 2.0  # a process that exits sooner "exited at once"; one that ran longer resets the backoff


class State(StrEnum):
    starting = "starting"
    running = "running"
    paused = "paused"
    stopping = "stopping"
    stopped = "stopped"
    restarting = "restarting"
    failed = "failed"


_SCRIPT = re.compile(r"[;&|\n(){}]")  # control operators: the command is a script, not one program to exec


def shell_argv(command: str) -> list[str]:
    """One program is exec'd by its shell (its exit code and signals are its own); a script keeps its shell."""
    return ["/bin/sh", "-c", command if _SCRIPT.search(command) else "exec " + command]


def describe_exit(code: int) -> str:
    """``exited with code N``, or ``killed by signal SIGX`` for asyncio's negative return codes."""
    if code >= 0:
        return f"exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = str(-code)
    return f"killed by signal {name}"


def _decode(line: bytes) -> str:
    return line.decode("utf-8", errors="replace").rstrip("\r")


class _OutputProtocol(asyncio.SubprocessProtocol):
    """Splits the child's output into lines as it arrives (so the child never blocks on a full pipe)."""

    def __init__(self, lines: deque[str]) -> None:
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[int] = loop.create_future()
        self.output_closed: asyncio.Future[None] = loop.create_future()
        self._lines = lines
        self._partial = b""
        self._transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.SubprocessTransport, transport)

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        *complete, self._partial = (self._partial + data).split(b"\n")
        self._lines.extend(_decode(line) for line in complete)
        if len(self._partial) > _MAX_LINE:
            self._flush()

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._flush()
        if not self.output_closed.done():
            self.output_closed.set_result(None)

    def process_exited(self) -> None:
        assert self._transport is not None
        code = self._transport.get_returncode()
        if code is not None and not self.exited.done():
            self.exited.set_result(code)

    def _flush(self) -> None:
        if self._partial:
            self._lines.append(_decode(self._partial))
            self._partial = b""


class GroupProcess:
    """A child process leading its own process group, its merged stdout/stderr kept in a deque of lines.

    Its exit is seen as soon as the leader exits; asyncio's ``Process.wait()`` would also wait for every
    holder of the output pipe, such as a grandchild left running.
    """

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _OutputProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self.pid: int = transport.get_pid()
        self._reaped = False
        with _LIVE_LOCK:
            _LIVE_GROUPS.add(self.pid)

    @classmethod
    async def spawn(cls, argv: list[str], *, cwd: Path, env: dict[str, str], output: deque[str]) -> GroupProcess:
        """Start ``argv`` with stdin from /dev/null, stdout and stderr into ``output``, in a new session."""
        transport, protocol = await asyncio.get_running_loop().subprocess_exec(
            lambda: _OutputProtocol(output),
            *argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return cls(transport, protocol)

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    async def wait(self) -> int:
        """The leader's return code, once it has exited."""
        return await asyncio.shield(self._protocol.exited)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the whole group; nothing once the group is reaped (its id may belong to another)."""
        if not self._reaped:
            with contextlib.suppress(*_GONE):
                os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """SIGTERM the group (waking it if stopped), SIGKILL whatever is left after ``grace`` seconds, reap."""
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._group_gone(), grace)
        await self.reap()

    async def reap(self) -> None:
        """Kill what is left of the group, collect the rest of its output and release the pipe. Idempotent."""
        self.signal(signal.SIGKILL)
        self._reaped = True
        with _LIVE_LOCK:
            _LIVE_GROUPS.discard(self.pid)
        await asyncio.wait([self._protocol.exited, self._protocol.output_closed], timeout=_DRAIN)
        self._transport.close()

    async def _group_gone(self) -> None:
        await self.wait()
        while self._has_live_members():
            await asyncio.sleep(_POLL)

    def _has_live_members(self) -> bool:
        """Whether a process of the group still runs; zombies waiting for a (maybe lazy) reaper don't count."""
        if self._reaped:
            return False
        try:
            os.killpg(self.pid, 0)
        except _GONE:
            return False
        for process in psutil.process_iter(["status"]):
            with contextlib.suppress(OSError):
                if process.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(process.pid) == self.pid:
                    return True
        return False


class Instance:
    """One supervised instance process: start, pause, resume, terminate, sample; restarts it after a crash.

    ``exit_code`` follows asyncio: negative for a process killed by a signal.
    """

    def __init__(
        self,
        instance_id: str,
        workdir: Path,
        command: str,
        env: dict[str, str],
        *,
        policy: RestartPolicy = RestartPolicy(),
        tail_lines: int = 40,
        memory_limit_mb: float | None = None,
        confinement: Confinement | None = None,
        on_change: Callable[[Instance], Awaitable[None]] | None = None,
    ) -> None:
        self.instance_id = instance_id
        self.workdir = workdir
        self.command = command
        self.env = env
        self.policy = policy
        self.memory_limit_mb = memory_limit_mb
        self.confinement = confinement
        self.state = State.stopped
        self.pid: int | None = None
        self.restarts = 0
        self.last_error: str | None = None
        self.exit_code: int | None = None
        self.on_change = on_change  # told of every state change; None: nobody listens
        self._output: deque[str] = deque(maxlen=tail_lines)
        self._lock = asyncio.Lock()  # held while spawning and while terminate() kills, so neither misses the other
        self._stop = asyncio.Event()
        self._child: GroupProcess | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._termination: asyncio.Future[None] | None = None
        self._restart_times: deque[float] = deque()
        self._delay = 0.0
        self._started_at = 0.0
        self._kill_reason: str | None = None
        self._tree: dict[int, psutil.Process] = {}

    def output_tail(self) -> list[str]:
        """The last ``tail_lines`` lines of the process's merged stdout and stderr, across restarts."""
        return list(self._output)

    async def start(self) -> None:
        """Spawn the command; the instance is ``running`` once its process exists (readiness is the caller's)."""
        if self.state not in (State.stopped, State.failed):
            raise RuntimeError(f"instance {self.instance_id} is {self.state}")
        self._reset()
        await self._set_state(State.starting)
        child = await self._spawn()
        if child is not None:
            self._supervisor = asyncio.create_task(self._supervise(child), name=f"instance {self.instance_id}")

    async def pause(self) -> None:
        """Freeze the whole process group (SIGSTOP)."""
        self._require(State.running).signal(signal.SIGSTOP)
        await self._set_state(State.paused)

    async def resume(self) -> None:
        """Let a paused process group go on (SIGCONT)."""
        self._require(State.paused).signal(signal.SIGCONT)
        await self._set_state(State.running)

    def kill(self) -> None:
        """SIGKILL the process group at once (a termination under way then ends without waiting out its grace)."""
        if self._child is not None:
            self._child.signal(signal.SIGKILL)

    async def terminate(self, grace: float = 10.0) -> None:
        """Stop for good: SIGTERM to the group, SIGKILL after ``grace`` seconds, no restart. Idempotent."""
        if self._termination is None:
            self._termination = asyncio.ensure_future(self._terminate(grace))
        if asyncio.current_task() is not self._supervisor:  # from an on_change callback: it cannot wait for itself
            await asyncio.shield(self._termination)

    def sample(self) -> Usage | None:
        """CPU (since the previous sample), memory and size of the process tree; None when not running.

        Enforces ``memory_limit_mb`` too: a tree above it is killed, which counts as a crash.
        """
        if self.state not in (State.running, State.paused) or self._child is None:
            return None
        cpu = rss = 0.0
        count = 0
        for process in self._process_tree(self._child.pid):
            try:
                with process.oneshot():
                    process_cpu, process_rss = process.cpu_percent(None), process.memory_info().rss
            except psutil.Error:  # gone since the tree was listed
                continue
            cpu += process_cpu
            rss += process_rss
            count += 1
        if count == 0:
            return None
        usage = Usage(cpu_percent=cpu, memory_mb=rss / 2**20, processes=count)
        self._enforce_memory_limit(usage)
        return usage

    def _reset(self) -> None:
        self._stop.clear()
        self._termination = None
        self._restart_times.clear()
        self._delay = 0.0
        self._output.clear()
        self.restarts = 0
        self.last_error = None
        self.exit_code = None

    def _require(self, state: State) -> GroupProcess:
        if self.state is not state or self._child is None:
            raise RuntimeError(f"instance {self.instance_id} is {self.state}, not {state}")
        return self._child

    async def _set_state(self, state: State) -> None:
        self.state = state
        if self.on_change is None:
            return
        try:
            await self.on_change(self)
        except Exception:
            log.exception("on_change callback failed for instance %s (%s)", self.instance_id, state)

    async def _spawn(self) -> GroupProcess | None:
        async with self._lock:
            if self._stop.is_set():
                return None
            argv = shell_argv(self.command)
            if self.confinement is not None:
                self.confinement.spawned()
                argv = self.confinement.argv(argv)
            try:
                child = await GroupProcess.spawn(argv, cwd=self.workdir, env=self.env, output=self._output)
            except OSError as exc:
                self.last_error = f"failed to start: {exc}"
                child = None
            else:
                self._adopt(child)
        if not self._stop.is_set():
            await self._set_state(State.running if child else State.failed)
        return child

    def _adopt(self, child: GroupProcess) -> None:
        self._child = child
        self.pid = child.pid
        self._started_at = time.monotonic()
        self._kill_reason = None
        self._tree = {}
        with contextlib.suppress(psutil.Error):
            leader = psutil.Process(child.pid)
            leader.cpu_percent(None)  # so that the first sample measures from the start
            self._tree = {child.pid: leader}

    async def _supervise(self, child: GroupProcess) -> None:
        try:
            await self._watch(child)
        except Exception as exc:
            log.exception("supervisor of instance %s failed", self.instance_id)
            if self._child is not None:
                await self._child.reap()
            self.last_error = f"supervisor error: {exc!r}"
            await self._set_state(State.failed)

    async def _watch(self, child: GroupProcess | None) -> None:
        while child is not None:
            code = await child.wait()
            if self._stop.is_set():  # terminate() reaps it
                return
            await child.reap()
            if self._stop.is_set():
                return
            child = await self._recover(code)

    async def _recover(self, code: int) -> GroupProcess | None:
        """After a crash: wait the backoff and start again, or give up as failed."""
        self.exit_code = code
        self.pid = None
        confined = self.confinement.exit_reason() if self.confinement is not None else None
        reason = self._kill_reason or confined or describe_exit(code)
        delay = self._restart_delay(uptime=time.monotonic() - self._started_at)
        if delay is None:
            self.last_error = f"{reason}; gave up after {self.restarts} restarts"
            log.warning("instance %s %s", self.instance_id, self.last_error)
            await self._set_state(State.failed)
            return None
        self.last_error = reason
        log.warning("instance %s %s; restarting in %.2fs", self.instance_id, reason, delay)
        await self._set_state(State.restarting)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), delay)
        if self._stop.is_set():
            return None
        self.restarts += 1
        return await self._spawn()

    def _restart_delay(self, uptime: float) -> float | None:
        """Seconds to wait before the next restart, or None once ``max_restarts`` happened within ``window``."""
        policy = self.policy
        now = time.monotonic()
        while self._restart_times and now - self._restart_times[0] > policy.window:
            self._restart_times.popleft()
        if len(self._restart_times) >= policy.max_restarts:
            return None
        self._restart_times.append(now)
        quick = uptime < policy.min_uptime and self._delay > 0
        self._delay = min(self._delay * 2 if quick else policy.backoff, policy.backoff_cap)
        return self._delay

    async def _terminate(self, grace: float) -> None:
        if self.state in (State.stopped, State.failed):
            return
        self._stop.set()
        await self._set_state(State.stopping)
        async with self._lock:
            if self._child is not None:
                await self._child.terminate(grace)
                self.exit_code = self._child.returncode
        if self._supervisor is not None:
            await self._supervisor
        self.pid = None
        await self._set_state(State.stopped)

    def _process_tree(self, pid: int) -> list[psutil.Process]:
        """The leader and its descendants, reusing the previous sample's Process objects (cpu_percent needs them)."""
        try:
            leader = self._tree.get(pid) or psutil.Process(pid)
            found = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return []
        self._tree = {process.pid: self._known(process) for process in found}
        return list(self._tree.values())

    def _known(self, process: psutil.Process) -> psutil.Process:
        previous = self._tree.get(process.pid)
        return previous if previous == process else process  # equal: same pid and same creation time

    def _enforce_memory_limit(self, usage: Usage) -> None:
        limit = self.memory_limit_mb
        if limit is None or usage.memory_mb <= limit or self._kill_reason is not None or self._child is None:
            return
        if self.confinement is not None and self.confinement.memory_enforced:
            return  # the kernel holds it to the limit (a sample may include the sandbox's own processes)
        self._kill_reason = f"memory limit exceeded ({usage.memory_mb:.1f} MB > limit {limit:g} MB)"
        log.warning("instance %s: %s; killing it", self.instance_id, self._kill_reason)
        self._child.signal(signal.SIGKILL)
