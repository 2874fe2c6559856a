"""How a hosting node runs listing code (build commands and instances) away from the node's and the hub's secrets.

Every such process is started through a chain of small programs, each exec'ing the next, so the process the node
supervises (and signals as a group) is the chain's first one and ends up as the sandbox itself:

1. ``/bin/sh -c JOIN`` writes its own pid into the instance's cgroups (memory and CPU limits the kernel enforces),
2. ``prlimit`` sets resource limits where no cgroup can: the largest file a build may write, a data-segment limit as
   the memory fallback,
3. ``bwrap`` (bubblewrap) gives it its own mount, PID, IPC and UTS namespaces: the system (``/usr``, ``/etc``, the
   node's Python) read-only, a private ``/tmp``, its own working directory read-write and nothing else of the node,
   so neither the hub's nor the node's data directory, nor another instance's directory, exists for it,
4. ``setpriv`` drops it, when the node runs as root, to a user of its own (one per instance and per build) with no
   capabilities and no way to gain privileges.

Without bubblewrap (``--sandbox none``, or ``auto`` where it is missing) the separate user and directory permissions
(the hub's and the node's directories 0700, or 0711 where an instance must pass through) keep it out of them.
The network stays: instances talk to the hub over HTTP at ``AGORA_URL``.

Listing code runs the node's own Python (``python`` on its PATH, with the SDK). A separate user cannot, without a
sandbox, when that Python lies in a directory closed to other users (a virtualenv in root's home, mode 0700), so
:meth:`Sandbox.setup` runs it once as listing code would and refuses to start the node, naming the cause and the fixes,
rather than let every instance fail with "Permission denied".
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from .cgroups import Cgroup, CgroupTree
from .files import entries

log = logging.getLogger("agora.hosting")

# Joins the cgroups named before "--" (their cgroup.procs files), then runs the rest.
JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
UID_BASE = 2_000_000_000  # listing code runs as uids from here on: far from any system's or login's
UID_BLOCK = 65_536  # ids per node; a node's block is chosen by its directory, so two nodes on one machine differ
UID_BLOCKS = 16_384
# What an instance needs of the node at least: ``python`` found on its PATH by its shell (as a start command finds it),
# the standard library beyond Python's frozen modules, the SDK's client, and a file of its own directory (the build's).
REACH = ["/bin/sh", "-c", 'exec python -c "$0" "$1"', "import sys, agora_sdk.client; open(sys.argv[1]).read()", "build.txt"]


class SandboxMode(StrEnum):
    auto = "auto"  # bubblewrap where it works, else none
    none = "none"  # a separate user (when the node is root) and directory permissions only
    bwrap = "bwrap"  # bubblewrap or the node does not start


class SandboxError(Exception):
    """The node cannot run listing code the way it was asked to."""


@dataclass(frozen=True)
class Limits:
    memory_mb: float | None = None
    cpu: float | None = None  # cores
    file_bytes: int | None = None  # the largest file it may write


class UidPool:
    """The users listing code runs as, one per instance and per build, never two at once on one uid. Taken in turn
    (not the lowest free one), so that a uid comes back only after all the others: what one run may have left behind
    (a file in /tmp, without a sandbox) is not handed to the next."""

    def __init__(self, first: int, size: int = UID_BLOCK) -> None:
        self.first, self.size = first, size
        self._taken: dict[str, int] = {}
        self._next = secrets.randbelow(size)

    @classmethod
    def for_node(cls, root: Path) -> UidPool:
        block = int(hashlib.sha256(str(root).encode()).hexdigest(), 16) % UID_BLOCKS
        return cls(UID_BASE + block * UID_BLOCK)

    def owns(self, uid: int) -> bool:
        return self.first <= uid < self.first + self.size

    def take(self, key: str, uid: int | None = None) -> int:
        """The uid of ``key``: the one given (found on disk: an instance keeps its user across node restarts), the
        one it has, or the lowest free one."""
        if uid is None:
            uid = self._taken.get(key)
        if uid is None:
            used = set(self._taken.values())
            if len(used) >= self.size:
                raise SandboxError(f"all {self.size} sandbox users are in use")
            while (uid := self.first + self._next) in used:
                self._next = (self._next + 1) % self.size
            self._next = (self._next + 1) % self.size
        self._taken[key] = uid
        return uid

    def release(self, key: str) -> None:
        self._taken.pop(key, None)


class Confinement:
    """How one build step or instance runs: the chain of programs before its command, and its cgroup."""

    def __init__(self, prefix: list[str], isolation: dict[str, Any], cgroup: Cgroup | None, memory_mb: float | None) -> None:
        self.prefix = prefix
        self.isolation = isolation  # reported with the instance: sandbox, uid, memory, cpu
        self.cgroup = cgroup
        self.memory_mb = memory_mb
        self._ooms = 0

    @property
    def memory_enforced(self) -> bool:
        """Whether the kernel holds the whole process tree to the memory limit (no need to kill it on a sample)."""
        return self.cgroup is not None and self.isolation["memory"].startswith("cgroup")

    def argv(self, argv: list[str]) -> list[str]:
        return [*self.prefix, *argv]

    def spawned(self) -> None:
        """Called before each start: a later OOM kill is this run's."""
        self._ooms = self.cgroup.oom_kills() if self.cgroup else 0

    def exit_reason(self) -> str | None:
        """Why the run ended when the confinement ended it (the kernel's OOM killer), else None."""
        if self.cgroup is not None and self.cgroup.oom_kills() > self._ooms:
            return f"killed by the memory limit (OOM: over {self.memory_mb:g} MB)"
        return None

    def release(self) -> None:
        """Remove its cgroup (killing what is left in it). Blocks briefly: call it from a thread."""
        if self.cgroup is not None:
            self.cgroup.remove()
            self.cgroup = None


class Sandbox:
    """A node's way of running listing code; :meth:`setup` finds what the machine offers."""

    def __init__(
        self,
        *,
        bwrap: str | None = None,
        setpriv: str | None = None,
        prlimit: str | None = shutil.which("prlimit"),
        uids: UidPool | None = None,
        cgroups: CgroupTree | None = None,
        binds: Sequence[Path] = (),
        hidden: Sequence[Path] = (),
        tmp_size: bool = False,
    ) -> None:
        self.bwrap, self.setpriv, self.prlimit = bwrap, setpriv, prlimit
        self.uids = uids  # None: listing code runs as the node's own user
        self.cgroups = cgroups
        self.binds = tuple(binds)
        self.hidden = tuple(hidden)
        self._tmp_size = tmp_size

    @classmethod
    def setup(cls, mode: SandboxMode, root: Path, hidden: Sequence[Path] = ()) -> Sandbox:
        """What the machine offers for ``mode``; the node's directory ``root`` and ``hidden`` ones (the hub's data
        directory) are kept from listing code. Raises :class:`SandboxError` when ``mode`` cannot be had."""
        root = root.resolve()
        hidden = tuple(dict.fromkeys([root, *(h.resolve() for h in hidden)]))
        uids = setpriv = None
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                raise SandboxError("the node runs as root, but setpriv (util-linux) is missing to run listing code as another user")
            uids = UidPool.for_node(root)
        tag = hashlib.sha256(str(root).encode()).hexdigest()[:12]
        cgroups, why = CgroupTree.create(tag)
        if why:
            log.info("cgroups: %s", why)
        sandbox = cls(setpriv=setpriv, uids=uids, cgroups=cgroups, hidden=hidden)
        if mode is not SandboxMode.none:
            problem = sandbox._use_bwrap(shutil.which("bwrap"))
            if problem and mode is SandboxMode.bwrap:
                raise SandboxError(f"--sandbox bwrap: {problem}")
            if problem:
                log.warning("listing code runs without a sandbox: %s", problem)
        if sandbox.bwrap is None and uids is None:
            log.warning("listing code runs as the node's own user without a sandbox: it may read what the node may")
        sandbox._protect(root)
        sandbox._check_reach(root / "instances")
        return sandbox

    def describe(self) -> str:
        parts = ["bwrap sandbox" if self.bwrap else "no sandbox"]
        if self.uids is not None:
            parts.append(f"separate users (uids from {self.uids.first})")
        else:
            parts.append("the node's own user")
        for controller in ("memory", "cpu"):
            how = self.cgroups.describe(controller) if self.cgroups else None
            parts.append(f"{controller} limits: {how or ('rlimit and samples' if controller == 'memory' else 'not enforced')}")
        return ", ".join(parts)

    def confine(
        self, workdir: Path, uid: int | None, limits: Limits, cgroup_name: str | None = None, share: Sequence[Path] = ()
    ) -> Confinement:
        """The chain to run a command in ``workdir`` as ``uid`` within ``limits`` (a cgroup ``cgroup_name`` for the
        memory and CPU limits where the node has cgroups; OSError if it cannot be made). ``share``: sockets it may use
        (a container engine's, for docker listings), with the groups that own them."""
        cgroup = None
        if self.cgroups is not None and cgroup_name is not None and (limits.memory_mb is not None or limits.cpu is not None):
            cgroup = self.cgroups.make(cgroup_name, limits.memory_mb, limits.cpu)
        prefix: list[str] = []
        if cgroup is not None:
            prefix += ["/bin/sh", "-c", JOIN, "agora-join", *map(str, cgroup.procs_files), "--"]
        memory = cpu = "none"
        if limits.memory_mb is not None:
            memory = (self.cgroups.describe("memory") if cgroup and self.cgroups else None) or "sampled"
        if limits.cpu is not None:
            cpu = (self.cgroups.describe("cpu") if cgroup and self.cgroups else None) or "none"
        rlimits = []
        if limits.file_bytes is not None:
            rlimits.append(f"--fsize={limits.file_bytes}")
        if memory == "sampled" and self.prlimit:
            rlimits.append(f"--data={int(limits.memory_mb * 2**20)}")  # type: ignore[operator]
            memory = "rlimit"
        if rlimits and self.prlimit:
            prefix += [self.prlimit, *rlimits, "--"]
        if self.bwrap:
            tmp_bytes = limits.file_bytes or (int(limits.memory_mb * 2**20) if limits.memory_mb else None)
            prefix += self._bwrap_args(workdir, tmp_bytes, share)
        if uid is not None:
            assert self.setpriv is not None
            groups = sorted({str(path.stat().st_gid) for path in share})
            prefix += [
                self.setpriv, f"--reuid={uid}", f"--regid={uid}", f"--groups={','.join(groups)}" if groups else "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
            ]  # fmt: skip
        isolation = {"sandbox": "bwrap" if self.bwrap else "none", "uid": uid, "memory": memory, "cpu": cpu}
        return Confinement(prefix, isolation, cgroup, limits.memory_mb)

    def own(self, path: Path, uid: int | None) -> None:
        """Hand a directory tree the node made to ``uid`` (nothing when listing code runs as the node's user)."""
        if uid is None:
            return
        for entry in [path, *entries(path)]:
            os.lchown(entry, uid, uid)

    # -- setup --------------------------------------------------------------------------------------------------

    def _use_bwrap(self, bwrap: str | None) -> str | None:
        """Take bubblewrap if it works here with the options used; else why not."""
        if bwrap is None:
            return "bubblewrap (bwrap) is not installed"
        self.bwrap = bwrap
        self.binds = _python_dirs()
        try:
            self._tmp_size = "--size" in subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
            with tempfile.TemporaryDirectory(prefix="agora-sandbox-probe-") as probe:
                argv = self.confine(Path(probe), self.uids.first if self.uids else None, Limits()).argv(["/bin/true"])
                done = subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=probe)
        except (OSError, subprocess.TimeoutExpired) as exc:
            done, error = None, str(exc)
        else:
            error = done.stderr.strip()[-300:] or f"exit code {done.returncode}"
        if done is not None and done.returncode == 0:
            return None
        self.bwrap, self.binds = None, ()
        return f"bubblewrap does not work here: {error}"

    def _check_reach(self, parent: Path) -> None:
        """Run this node's Python as an instance would (its user, its sandbox, a directory of its own in ``parent``):
        it must import the SDK and read a file there. Raises :class:`SandboxError` naming the cause and the fixes."""
        if self.bwrap is None and self.uids is None:
            return  # listing code runs as the node's own user, who runs this very interpreter
        uid = self.uids.take("reach-probe") if self.uids is not None else None
        parent.mkdir(parents=True, exist_ok=True)
        try:
            with tempfile.TemporaryDirectory(prefix=".reach-", dir=parent) as made:
                probe = Path(made)
                (probe / "build.txt").write_text("a listing's build, as an instance's copy of it\n")
                self.own(probe, uid)
                argv = self.confine(probe, uid, Limits()).argv(REACH)
                path = os.pathsep.join([os.path.dirname(sys.executable), os.defpath])  # as builds.isolated_env has it
                env = {"PATH": path, "HOME": str(probe), "LANG": "C.UTF-8"}
                try:
                    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=probe, env=env)
                    error = None if done.returncode == 0 else done.stderr.strip()[-300:] or f"exit code {done.returncode}"
                except (OSError, subprocess.TimeoutExpired) as exc:
                    error = str(exc)
        finally:
            if self.uids is not None:
                self.uids.release("reach-probe")
        if error is None:
            return
        who = f"as uid {uid}" if uid is not None else "as the node's user"
        how = "in the bubblewrap sandbox" if self.bwrap else "without a sandbox"
        blocked = None if self.bwrap else _closed_on_the_way([Path(sys.executable), *map(Path, _sdk_dirs())])
        cause = f"{blocked} (mode {stat.S_IMODE(blocked.stat().st_mode):o}) does not let other users pass" if blocked else error
        fixes = (
            "install Agora (its virtualenv, and the Python that made it) where other users may read it"
            if self.bwrap
            else "install bubblewrap (e.g. apt-get install bubblewrap), which shows listing code the node's Python "
            "read-only; or install Agora (its virtualenv, and the Python that made it) where other users may read it, "
            "e.g. under /opt rather than a private home"
        )
        raise SandboxError(f"listing code runs {who} {how}, and cannot run this node's Python ({sys.executable}): {cause}. To fix it, {fixes}")

    def _bwrap_args(self, workdir: Path, tmp_bytes: int | None, share: Sequence[Path] = ()) -> list[str]:
        assert self.bwrap is not None
        args = [self.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--proc", "/proc", "--dev", "/dev"]
        if tmp_bytes and self._tmp_size:
            args += ["--size", str(tmp_bytes)]
        mounts = _Mounts(args)
        mounts.add("--tmpfs", Path("/tmp"), perms="1777")
        for entry in SYSTEM:
            if os.path.islink(entry):
                args += ["--symlink", os.readlink(entry), entry]
            elif os.path.isdir(entry):
                mounts.add("--ro-bind", Path(entry))
        resolver = os.path.realpath("/etc/resolv.conf")  # often a link into /run
        if not resolver.startswith("/etc/"):
            mounts.add("--ro-bind-try", Path(resolver))
        for path in self.binds:
            mounts.add("--ro-bind", path)
        for path in self.hidden:  # a data directory inside something bound (a checkout holding .agora) is blanked
            if mounts.shows(path):
                mounts.add("--tmpfs", path)
        for path in share:
            mounts.add("--bind", path)
        mounts.add("--bind", workdir)
        args += ["--chdir", str(workdir)]
        if os.geteuid() == 0:  # only what it takes to enter the directory (its user's) and setpriv to drop them all
            for cap in ("ALL", "+CAP_DAC_OVERRIDE", "+CAP_SETUID", "+CAP_SETGID", "+CAP_SETPCAP"):
                args += ["--cap-drop", cap] if cap == "ALL" else ["--cap-add", cap[1:]]
        return [*args, "--"]

    def _protect(self, root: Path) -> None:
        """Directory permissions that keep other users out of the node's and the hub's directories; where listing
        code must pass through one to reach its own directory (separate users, no sandbox), it may only pass."""
        passing = self.uids is not None and self.bwrap is None
        path_to = {root, *root.parents} if passing else set()
        for hidden in self.hidden:
            if not hidden.is_dir() or hidden.stat().st_uid != os.geteuid():
                continue
            if hidden not in path_to:
                hidden.chmod(0o700)
                continue
            hidden.chmod(0o711)
            for entry in hidden.iterdir():
                if entry not in path_to and not entry.is_symlink():
                    entry.chmod(entry.stat().st_mode & 0o700)
            os.umask(0o077)  # what the hub writes there later stays its own
        if passing:
            for sub in (root, root / "instances", root / "builds"):
                sub.mkdir(parents=True, exist_ok=True)
                sub.chmod(0o711)
            blocked = [p for p in (root, *root.parents) if not p.stat().st_mode & stat.S_IXOTH]
            if blocked:
                raise SandboxError(
                    f"listing code runs as other users without a sandbox, but {blocked[0]} (mode "
                    f"{stat.S_IMODE(blocked[0].stat().st_mode):o}) does not let them reach {root}: "
                    "install bubblewrap, or put the node's directory where other users may pass"
                )


class _Mounts:
    """The mounts of a bwrap command line, in order, and the directories leading to them: bwrap would make missing
    ones 0700 (root's), so they are made 0711 first, for the sandbox's user to pass through, and see nothing in."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.made: list[tuple[Path, bool]] = []  # (path, whether it shows the host's directory there)

    def add(self, option: str, path: Path, perms: str | None = None) -> None:
        for parent in reversed(path.parents[:-1]):
            if not self._exists(parent):
                self.args += ["--perms", "0711", "--dir", str(parent)]
                self.made.append((parent, False))
        if perms:
            self.args += ["--perms", perms]
        self.args += [option, str(path)] if option == "--tmpfs" else [option, str(path), str(path)]
        self.made.append((path, option != "--tmpfs"))

    def shows(self, path: Path) -> bool:
        """Whether the host's ``path`` is visible in the sandbox (under a bind, not blanked since)."""
        cover = self._cover(path)
        return cover is not None and cover[1]

    def _exists(self, path: Path) -> bool:
        cover = self._cover(path)
        return cover is not None and (cover[0] == path or (cover[1] and path.is_dir()))

    def _cover(self, path: Path) -> tuple[Path, bool] | None:
        """The last mount at or above ``path``: what the sandbox shows there."""
        return next(((m, host) for m, host in reversed(self.made) if path == m or path.is_relative_to(m)), None)


def kill_processes_of(uid: int) -> None:
    """SIGKILL every process running as ``uid`` (a sandbox user: only listing code of one build or instance)."""
    for process in psutil.process_iter(["uids"]):
        with contextlib.suppress(psutil.Error):
            if process.info["uids"] and process.info["uids"].real == uid:
                process.kill()


def _closed_on_the_way(paths: Sequence[Path]) -> Path | None:
    """The first directory on the way to one of ``paths`` (links followed at each step) that other users may not
    enter, or None."""
    for path in paths:
        for target in dict.fromkeys([path.absolute(), path.resolve()]):
            for directory in reversed(target.parents):
                with contextlib.suppress(OSError):
                    if not directory.stat().st_mode & stat.S_IXOTH:
                        return directory
    return None


def _sdk_dirs() -> list[str]:
    spec = importlib.util.find_spec("agora_sdk")
    return list(spec.submodule_search_locations or []) if spec is not None else []


def _python_dirs() -> tuple[Path, ...]:
    """What the node's Python needs, read-only in the sandbox (instances and builds use the node's python and SDK):
    its prefixes, the entries of sys.path (not the directory it was started from) and the SDK's own directory."""
    found = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    entries = sys.path[1:] if sys.path and sys.path[0] in ("", os.getcwd()) else sys.path
    found.update(entry for entry in entries if entry and os.path.exists(entry))
    found.update(_sdk_dirs())
    paths = sorted({Path(p).resolve() for p in found})
    system = [Path(p).resolve() for p in SYSTEM]
    kept: list[Path] = []
    for path in paths:  # sorted: a directory comes before what is inside it
        if not any(path.is_relative_to(k) for k in [*kept, *system]):
            kept.append(path)
    return tuple(kept)
