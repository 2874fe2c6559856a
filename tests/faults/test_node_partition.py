"""Fault: a hosting node loses the hub (issue 59, fault 5). A node talks to its hub through a proxy that partitions the
network (nothing gets through, connections hang). Its instance keeps running; it crashes during the cut and the node
restarts it on its own; the hub, hearing nothing, marks the node offline and bills none of the time it cannot vouch
for. When the network heals the node reconciles: the hub hears the restart it missed, billing resumes without a
restart of the instance, and the usage periods neither overlap nor leave a gap (nothing billed twice, nothing lost)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import psutil

from ..conftest import ok, until
from ..hubproc import HubProcess
from ..tcp_proxy import proxy
from ..test_marketplace import _online, host_node, listing, running, terminate

CUT_SECONDS = 6.0  # past the hub's offline threshold (2 s) and several of the node's sample intervals


def _periods(hub: HubProcess, instance_id: str) -> list[tuple[str, datetime, datetime]]:
    with sqlite3.connect(hub.data_dir / "agora.db") as db:
        rows = db.execute(
            "SELECT state, started_at, ended_at FROM market_usage WHERE instance_id = ? ORDER BY started_at", (instance_id,)
        ).fetchall()
    return [(state, datetime.fromisoformat(start), datetime.fromisoformat(end)) for state, start, end in rows]


def _alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def test_a_node_cut_off_from_the_hub_keeps_its_instances_and_reconciles(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", env={"AGORA_OFFLINE_AFTER": "2"}).start()
    with proxy(hub.port) as network:
        hub_seen_by_node = HubProcess(hub.data_dir, port=network.port)  # the node's way to the hub: the proxy
        node = host_node(hub_seen_by_node, tmp_path, "far", "--sample-interval", "0.5", "--restart-backoff", "0.2")
        try:
            with hub.client() as admin:
                until(lambda: _online(admin), "the node never came online")
                published = ok(admin.post("/marketplace/agents", json=listing()))
                iid = ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
                first = running(admin, iid)
                billed = lambda: ok(admin.get(f"/marketplace/instances/{iid}"))["billing_info"]["running_seconds"]  # noqa: E731

                network.partition()
                cut_at = time.monotonic()
                until(lambda: not _online(admin), "the cut-off node was never marked offline", 10)
                os.kill(first["pid"], signal.SIGKILL)  # a crash the hub cannot hear of now
                instance_dir = tmp_path / "far" / "instances" / iid
                until(
                    lambda: any(p.info["cwd"] == str(instance_dir) and p.pid != first["pid"] for p in psutil.process_iter(["cwd"])),
                    "the node did not restart the crashed instance while cut off",
                )  # fmt: skip
                frozen = billed()
                time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
                assert billed() == frozen, "time the hub could not see the instance was billed"
                assert ok(admin.get(f"/marketplace/instances/{iid}"))["restarts"] == 0  # not heard yet

                network.heal()
                healed_at, healed_on_the_wall = time.monotonic(), time.time()
                back = until(
                    lambda: (d := ok(admin.get(f"/marketplace/instances/{iid}")))["restarts"] == 1 and d["billing_info"]["running_seconds"] > frozen and d,
                    "the node never reconciled with the hub", 20,
                )  # fmt: skip
                reconciled = time.monotonic() - healed_at
                restarted = back["pid"]
                assert back["status"] == "running" and restarted != first["pid"] and _alive(restarted)
                assert psutil.Process(restarted).create_time() < healed_on_the_wall  # restarted during the cut
                assert "SIGKILL" in back["health_status"]["last_error"], back  # the crash it missed, with its cause
                until(lambda: _online(admin), "the node never came back online")
                done = ok(admin.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [20, 22]}}))
                assert done["result"] == {"sum": 42}
                assert ok(admin.get(f"/marketplace/instances/{iid}"))["pid"] == restarted  # reconciled, not restarted

                terminate(admin, iid)
                periods = _periods(hub, iid)
                for (_, _, end), (_, start, _) in zip(periods, periods[1:], strict=False):
                    assert start == end, periods  # one after the other: no time billed twice, none missing
                down = sum((e - s).total_seconds() for state, s, e in periods if state == "down")
                assert down >= CUT_SECONDS - 2.5, periods  # the cut, from the node's last heartbeat, is not billed
                assert reconciled < 5.0, reconciled
        finally:
            node.send_signal(signal.SIGTERM)
            node.wait(15)
            hub.stop()
