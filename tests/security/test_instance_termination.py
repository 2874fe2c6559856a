"""Terminating an instance keeps its promises (issue 24, item 9): the answer comes at once (202, ``stopping``) instead
of holding the request open for the grace period, the grace period asked for is the one the node gives (SIGTERM, then
SIGKILL), the final state and bill follow in the background, and asking again meanwhile is harmless."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import psutil
import pytest

from ..conftest import ok, until
from ..hubproc import HubProcess
from ..test_marketplace import listing, market_hub, settled

STUBBORN = "trap '' TERM; while :; do sleep 0.2; done"  # ignores SIGTERM: only the SIGKILL after the grace ends it


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    yield from market_hub(tmp_path_factory.mktemp("terminate"))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _sleeping(pid: int) -> bool:
    """The stubborn loop runs: its shell has set the trap and started a ``sleep``."""
    try:
        return any(c.name() == "sleep" for c in psutil.Process(pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return False


def test_terminate_answers_202_at_once_and_the_node_honours_the_grace(market: HubProcess) -> None:
    with market.client() as admin:
        published = ok(admin.post("/marketplace/agents", json=listing(build_config={"build_command": None, "start_command": STUBBORN})))
        iid = ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
        pid = settled(admin, iid, "running")["pid"]
        until(lambda: _sleeping(pid), "the instance never got past its trap")  # a SIGTERM before the trap would end it

        started = time.monotonic()
        answer = admin.delete(f"/marketplace/instances/{iid}", params={"grace_seconds": 3})
        answered = time.monotonic() - started
        assert answer.status_code == 202, answer.text
        assert answered < 2.5, f"terminate held the request {answered:.1f} s"  # the grace is 3 s
        stopping = answer.json()
        assert stopping["status"] == "stopping" and stopping["billing_info"]["final"] is False

        again = admin.delete(f"/marketplace/instances/{iid}", params={"grace_seconds": 0})  # harmless while it stops
        assert again.status_code == 202 and again.json()["status"] == "stopping", again.text
        assert again.json()["billing_info"]["running_seconds"] == stopping["billing_info"]["running_seconds"]  # billing ended

        stopped = settled(admin, iid, "stopped", timeout=15)
        took = time.monotonic() - started
        assert 3.0 <= took < 12.0, f"stopped after {took:.1f} s for a 3 s grace"  # SIGTERM ignored: SIGKILL at the grace
        assert stopped["billing_info"]["final"] is True
        assert stopped["billing_info"]["running_seconds"] == stopping["billing_info"]["running_seconds"]
        until(lambda: _gone(pid), "the instance's processes survived its termination", timeout=5)

        done = admin.delete(f"/marketplace/instances/{iid}")  # over: 200, nothing changes
        assert done.status_code == 200 and done.json()["status"] == "stopped", done.text

        spec = ok(admin.get("/openapi.json"))
        assert "202" in spec["paths"]["/marketplace/instances/{instance_id}"]["delete"]["responses"]


def test_pause_resume_and_terminate_reach_every_process_of_the_sandboxed_tree(market: HubProcess) -> None:
    """The group the node signals is the sandbox's (bubblewrap and its PID namespace included): SIGSTOP, SIGCONT and
    SIGTERM/SIGKILL reach the instance's children too."""
    with market.client() as admin:
        family = "sleep 300 & sleep 300 & trap '' TERM; wait"  # a shell that ignores SIGTERM, with two children
        published = ok(admin.post("/marketplace/agents", json=listing(build_config={"build_command": None, "start_command": family})))
        iid = ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
        running = settled(admin, iid, "running")
        leader = psutil.Process(running["pid"])
        assert running["isolation"]["sandbox"] == ("bwrap" if shutil.which("bwrap") else "none")

        def whole_tree() -> list[psutil.Process] | None:
            tree = [leader, *leader.children(recursive=True)]
            return tree if sum(p.name() == "sleep" for p in tree) == 2 else None

        tree = until(whole_tree, "the instance's children never started")

        ok(admin.post(f"/marketplace/instances/{iid}/pause"))
        until(lambda: all(p.status() == psutil.STATUS_STOPPED for p in tree), "not every process was stopped")
        ok(admin.post(f"/marketplace/instances/{iid}/resume"))
        until(lambda: not any(p.status() == psutil.STATUS_STOPPED for p in tree), "not every process was continued")

        assert admin.delete(f"/marketplace/instances/{iid}", params={"grace_seconds": 1}).status_code == 202
        settled(admin, iid, "stopped", timeout=15)
        until(lambda: all(_gone(p.pid) for p in tree), "a process of the tree outlived its instance", timeout=5)
