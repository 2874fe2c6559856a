"""Per-instance cgroups, so that the kernel enforces an instance's memory and CPU limits.

Each controller is used where the kernel has it: cgroup v2 (one hierarchy: ``memory.max``, ``cpu.max``) or v1 (one
hierarchy per controller: ``memory.limit_in_bytes``, ``cpu.cfs_quota_us``), so hybrid machines work too. A node's
instances go under ``<the node process's own cgroup>/agora-<tag>/<instance>`` in each hierarchy. A process joins its
cgroup before it runs listing code (see ``sandbox.JOIN``), so everything it starts is inside from its first byte.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("agora.hosting")

CONTROLLERS = ("memory", "cpu")
CPU_PERIOD_US = 100_000
_MIN_QUOTA_US = 1_000  # the kernel's smallest CFS quota


@dataclass(frozen=True)
class Hierarchy:
    """Where one controller is mounted and where this process sits in it."""

    version: int  # 1 or 2
    own: Path  # this process's cgroup directory


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:  # one write(): cgroup files take one value per write
        f.write(value)


def find_hierarchies(proc: Path = Path("/proc/self")) -> dict[str, Hierarchy]:
    """The controllers of :data:`CONTROLLERS` this process can use, v1 first (a controller bound to v1 is absent
    from v2), each with this process's own cgroup directory."""
    memberships: dict[str, str] = {}  # controller ("" for v2) -> path inside its hierarchy
    for line in _read(proc / "cgroup").splitlines():
        _id, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            memberships[name] = path
    v1: dict[str, tuple[Path, str]] = {}
    v2: tuple[Path, str] | None = None
    for line in _read(proc / "mountinfo").splitlines():
        fields = line.split()
        tail = fields[fields.index("-") + 1 :]
        root, mount_point, fstype, options = fields[3], Path(fields[4]), tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            v2 = (mount_point, root)
        elif fstype == "cgroup":
            for name in CONTROLLERS:
                if name in options:
                    v1[name] = (mount_point, root)
    found: dict[str, Hierarchy] = {}
    for name in CONTROLLERS:
        if name in v1 and name in memberships:
            own = _inside(*v1[name], memberships[name])
            if own is not None and own.is_dir():
                found[name] = Hierarchy(1, own)
        elif v2 is not None and "" in memberships:
            own = _inside(*v2, memberships[""])
            if own is not None and name in _read(own / "cgroup.controllers").split():
                found[name] = Hierarchy(2, own)
    return found


def _inside(mount_point: Path, mount_root: str, path: str) -> Path | None:
    """The directory of cgroup ``path`` under a mount of the hierarchy's ``mount_root`` (None: not visible)."""
    relative = os.path.relpath(path, mount_root)
    return None if relative.startswith("..") else (mount_point / relative).resolve()


class CgroupTree:
    """The node's own cgroups: ``agora-<tag>`` under the node process's cgroup, one per hierarchy."""

    def __init__(self, bases: dict[str, tuple[int, Path]]) -> None:
        self.bases = bases  # controller -> (version, the node's directory)

    @classmethod
    def create(cls, tag: str, proc: Path = Path("/proc/self")) -> tuple[CgroupTree | None, str]:
        """The node's cgroups, made where the kernel lets this process; None and why when no controller can be used."""
        try:
            hierarchies = find_hierarchies(proc)
        except (OSError, ValueError, IndexError) as exc:
            return None, f"cgroups unreadable: {exc}"
        bases: dict[str, tuple[int, Path]] = {}
        reasons: list[str] = []
        v2 = sorted(name for name, h in hierarchies.items() if h.version == 2)
        for name, hierarchy in hierarchies.items():
            base = hierarchy.own / f"agora-{tag}"
            try:
                if hierarchy.version == 2:
                    _delegate(hierarchy.own, base, v2)
                else:
                    base.mkdir(exist_ok=True)
            except OSError as exc:
                reasons.append(f"{name}: {hierarchy.own} not writable ({exc.strerror})")
                continue
            bases[name] = (hierarchy.version, base)
        missing = [name for name in CONTROLLERS if name not in hierarchies]
        reasons += [f"{name}: no controller" for name in missing]
        return (cls(bases) if bases else None), "; ".join(reasons)

    def describe(self, controller: str) -> str | None:
        """``cgroup v1`` or ``cgroup v2`` for a controller this tree enforces, else None."""
        found = self.bases.get(controller)
        return f"cgroup v{found[0]}" if found else None

    def make(self, name: str, memory_mb: float | None, cpu: float | None) -> Cgroup:
        """The cgroup of one instance with its limits set; one left by a node that died is emptied and reused."""
        dirs: dict[str, tuple[int, Path]] = {}
        for controller, (version, base) in self.bases.items():
            path = base / name
            if path.is_dir():
                _kill_members(path)
            else:
                path.mkdir()
            dirs[controller] = (version, path)
        cgroup = Cgroup(dirs)
        try:
            if memory_mb is not None and "memory" in dirs:
                cgroup.limit_memory(int(memory_mb * 2**20))
            if cpu is not None and "cpu" in dirs:
                cgroup.limit_cpu(cpu)
        except OSError:
            cgroup.remove()
            raise
        return cgroup

    def prune(self, keep: set[str]) -> None:
        """Remove the cgroups of instances that are not in ``keep`` (left by a node that was killed)."""
        for controller, (version, base) in self.bases.items():
            for path in base.iterdir():
                if path.is_dir() and path.name not in keep:
                    Cgroup({controller: (version, path)}).remove()

    def remove(self) -> None:
        """The node's directories go when the node stops (only once its instances' are gone: rmdir of an empty one)."""
        for _version, base in self.bases.values():
            with contextlib.suppress(OSError):
                base.rmdir()


def _delegate(own: Path, base: Path, controllers: list[str]) -> None:
    """cgroup v2 gives controllers to children only of a cgroup without processes of its own ("no internal
    processes"): when this process sits alone in ``own``, it moves into a leaf beside the node's cgroups."""
    enable = " ".join(f"+{c}" for c in controllers)
    try:
        _write(own / "cgroup.subtree_control", enable)
    except OSError as exc:
        members = _read(own / "cgroup.procs").split()
        if exc.errno != errno.EBUSY or members != [str(os.getpid())]:
            raise
        leaf = own / "agora-supervisor"
        leaf.mkdir(exist_ok=True)
        _write(leaf / "cgroup.procs", str(os.getpid()))
        _write(own / "cgroup.subtree_control", enable)
    base.mkdir(exist_ok=True)
    _write(base / "cgroup.subtree_control", enable)


class Cgroup:
    """One instance's cgroup, a directory per hierarchy."""

    def __init__(self, dirs: dict[str, tuple[int, Path]]) -> None:
        self.dirs = dirs

    @property
    def procs_files(self) -> list[Path]:
        """The ``cgroup.procs`` files a process writes itself into to join (one per hierarchy)."""
        return sorted({path / "cgroup.procs" for _version, path in self.dirs.values()})

    def limit_memory(self, limit: int) -> None:
        version, path = self.dirs["memory"]
        if version == 2:
            _write(path / "memory.max", str(limit))
            for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):  # not on every kernel
                with contextlib.suppress(OSError):
                    _write(path / name, value)
        else:
            with contextlib.suppress(OSError):  # memory+swap may not go below memory: lift it first
                _write(path / "memory.memsw.limit_in_bytes", "-1")
            _write(path / "memory.limit_in_bytes", str(limit))
            with contextlib.suppress(OSError):  # absent without swap accounting
                _write(path / "memory.memsw.limit_in_bytes", str(limit))

    def limit_cpu(self, cores: float) -> None:
        version, path = self.dirs["cpu"]
        quota = max(_MIN_QUOTA_US, int(cores * CPU_PERIOD_US))
        if version == 2:
            _write(path / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        else:
            _write(path / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(path / "cpu.cfs_quota_us", str(quota))

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this cgroup for going over its memory limit."""
        if "memory" not in self.dirs:
            return 0
        version, path = self.dirs["memory"]
        name = "memory.events" if version == 2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            for line in _read(path / name).splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def remove(self) -> None:
        """Kill what is left in it and remove it (a cgroup goes only once it is empty)."""
        for _version, path in self.dirs.values():
            _kill_members(path)
            for _ in range(50):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # members still exiting
                    time.sleep(0.02)
            else:
                log.warning("cgroup %s could not be removed", path)


def _kill_members(path: Path) -> None:
    with contextlib.suppress(OSError):
        for pid in _read(path / "cgroup.procs").split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
