"""Listing code runs away from the hub's secrets (issue 24, item 12): a build command and an instance that try to read
the hub's admin key and database, the node's builds and another instance's directory get nothing, with the bubblewrap
sandbox and without it (separate users and directory permissions); they run as users of their own when the node is
root; and an instance's memory and CPU limits are the kernel's (cgroups): a memory hog is killed and reported."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from agora.hosting.cgroups import find_hierarchies

from ..conftest import ok, until
from ..hubproc import HubProcess
from ..interpreters import readable_python
from ..test_marketplace import listing, market_hub, settled

ROOT = os.geteuid() == 0
PROBE = r"""
stage=$1
for path in $PROBE_FILES; do
    if cat "$path" > /dev/null 2>&1; then echo "$stage READ $path"; else echo "$stage DENIED $path"; fi
done
for dir in $PROBE_DIRS; do
    if ls "$dir" > /dev/null 2>&1; then echo "$stage LISTED $dir"; else echo "$stage DENIED $dir"; fi
    if echo pwned > "$dir/pwned" 2> /dev/null; then echo "$stage WROTE $dir"; fi
done
echo "$stage uid=$(id -u)"
"""


def _cgroups_writable() -> bool:
    try:
        found = find_hierarchies()
    except OSError:
        return False
    return {"memory", "cpu"} <= set(found) and all(os.access(h.own, os.W_OK) for h in found.values())


def _hub(sandbox: str) -> Iterator[HubProcess]:
    """A hub whose local node runs listing code in the bubblewrap sandbox, or without one. Without it, other users
    must be able to pass through the directories above the node's (a directory of its own under /tmp, 0711) and to
    run the node's Python (installed where they may read it)."""
    base = Path(tempfile.mkdtemp(prefix="agora-isolation-", dir="/tmp"))
    base.chmod(0o711)
    python = readable_python(base / "opt-agora") if sandbox == "none" and ROOT else sys.executable
    try:
        yield from market_hub(base / "hub", python=python, AGORA_NODE_SANDBOX=sandbox, AGORA_NODE_MAX_RESTARTS="0")
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def sandboxed() -> Iterator[HubProcess]:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed")
    yield from _hub("bwrap")


@pytest.fixture(scope="module")
def plain() -> Iterator[HubProcess]:
    yield from _hub("none")


@pytest.fixture(params=["sandboxed", "plain"])
def market(request: pytest.FixtureRequest) -> HubProcess:
    return request.getfixturevalue(request.param)


def _start(admin: httpx.Client, body: dict[str, Any], **config: Any) -> dict[str, Any]:
    published = ok(admin.post("/marketplace/agents", json=body))
    return ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"], "instance_config": config}))


def test_listing_code_cannot_reach_the_hubs_secrets_or_other_instances(market: HubProcess, tmp_path: Path) -> None:
    sandbox = market.env["AGORA_NODE_SANDBOX"]
    data = market.data_dir
    with market.client() as admin:
        sleeper = listing(build_config={"build_command": None, "start_command": "sleep 600"})  # its directory: a copy of EXAMPLE
        other = _start(admin, sleeper)
        settled(admin, other["instance_id"], "running")
        other_dir = data / "node" / "instances" / other["instance_id"]
        builds = data / "node" / "builds" / other["instance"]["listing_id"]
        assert (other_dir / "agent.py").is_file() and (builds / "v1" / "agent.py").is_file()

        repo = tmp_path / "probe"
        repo.mkdir()
        (repo / "probe.sh").write_text(PROBE)
        files = [data / "admin.key", data / "agora.db", other_dir / "agent.py", builds / "v1" / "agent.py"]
        dirs = [data, data / "node", data / "node" / "instances", other_dir, builds]
        body = listing(
            repository={"url": str(repo)},
            build_config={
                "type": "custom", "build_command": "sh probe.sh build > build-probe.txt",
                "start_command": "cat build-probe.txt; sh probe.sh instance; exit 3",
                "env_vars": {"PROBE_FILES": " ".join(map(str, files)), "PROBE_DIRS": " ".join(map(str, dirs))},
            },
        )  # fmt: skip
        probe = _start(admin, body)
        failed = settled(admin, probe["instance_id"], "failed")
        lines = failed["last_output"]
        for stage in ("build", "instance"):
            assert [line for line in lines if line.startswith(stage) and "DENIED" in line] == [
                f"{stage} DENIED {path}" for path in [*files, *dirs]
            ], lines
            assert not [line for line in lines if line.startswith(stage) and ("READ" in line or "LISTED" in line or "WROTE" in line)], lines
        assert not (other_dir / "pwned").exists()

        uids = {stage: int(line.split("uid=")[1]) for line in lines for stage in ("build", "instance") if line.startswith(f"{stage} uid=")}
        isolation = failed["isolation"]
        assert isolation["sandbox"] == sandbox and isolation["uid"] == (uids["instance"] if ROOT else None)
        if ROOT:  # listing code runs as users of its own, one per build and per instance
            assert 0 not in uids.values() and uids["build"] != uids["instance"]
            running = ok(admin.get(f"/marketplace/instances/{other['instance_id']}"))
            assert running["isolation"]["uid"] not in (0, uids["instance"], uids["build"])
            leader = psutil.Process(running["pid"])
            sleepers = [p for p in [leader, *leader.children(recursive=True)] if p.name() == "sleep"]
            assert [p.uids().real for p in sleepers] == [running["isolation"]["uid"]]


def _joined(pid: int) -> dict[str, Any] | None:
    """The process's cgroups once it sits in its instance's (under the node's ``agora-<tag>``) for cpu and memory."""
    found = find_hierarchies(Path(f"/proc/{pid}"))
    return found if all("agora-" in str(found[c].own) for c in ("cpu", "memory")) else None


@pytest.mark.skipif(not (ROOT and _cgroups_writable()), reason="no writable cgroup memory and cpu controllers here")
def test_memory_and_cpu_limits_are_the_kernels(plain: HubProcess) -> None:
    """Held by the cgroups the process joins before the sandbox (if any) starts: tested without one."""
    market = plain
    requirements = {"min_memory_mb": 32, "min_cpu_cores": 0.1}
    with market.client() as admin:
        sleeper = listing(build_config={"build_command": None, "start_command": "sleep 600"}, host_requirements=requirements)
        limited = _start(admin, sleeper, memory_limit=48, cpu_limit=0.5)
        pid = settled(admin, limited["instance_id"], "running")["pid"]
        isolation = ok(admin.get(f"/marketplace/instances/{limited['instance_id']}"))["isolation"]
        assert isolation["memory"].startswith("cgroup") and isolation["cpu"].startswith("cgroup"), isolation
        # The process joins its cgroups as it starts, before the listing's command runs: wait for that moment.
        cgroup = until(lambda: _joined(pid), f"process {pid} never joined its instance's cgroups", timeout=10)
        cpu, memory = cgroup["cpu"], cgroup["memory"]
        if cpu.version == 2:
            assert (cpu.own / "cpu.max").read_text().split() == ["50000", "100000"]
        else:
            assert (cpu.own / "cpu.cfs_quota_us").read_text().strip() == "50000"
            assert (cpu.own / "cpu.cfs_period_us").read_text().strip() == "100000"
        limit = (memory.own / ("memory.max" if memory.version == 2 else "memory.limit_in_bytes")).read_text().strip()
        assert int(limit) == 48 * 2**20

        hog = listing(
            build_config={"build_command": None, "start_command": "tail /dev/zero"},
            host_requirements=requirements,
        )  # fmt: skip
        killed = settled(admin, _start(admin, hog, memory_limit=48)["instance_id"], "failed")
        assert "killed by the memory limit (OOM: over 48 MB)" in killed["health_status"]["last_error"], killed["health_status"]
