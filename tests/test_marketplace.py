"""The marketplace end to end: listings, a hub's own hosting node and `agora host` nodes running real instances of
examples/marketplace_agent, pause that really stops the process and the bill, terminate with the final bill, restarts,
co-location, and customers that never see each other's instances."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from agora.hosting.node import detected_runtimes

from .conftest import (
    call,
    expect_error,
    fresh_postgres_url,
    new_tenant,
    ok,
    unique,
    until,
)
from .hubproc import HubProcess

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "marketplace_agent"
NODE_ENV = {
    "AGORA_LOCAL_NODE": "true",
    "AGORA_NODE_SAMPLE_INTERVAL": "0.3",
    "AGORA_NODE_MAX_RESTARTS": "2",
    "AGORA_NODE_RESTART_BACKOFF": "0.1",
    "AGORA_NODE_CAPACITY_CPU": "4",
    "AGORA_NODE_CAPACITY_MEM": "4096",
}


def listing(name: str | None = None, **changes: Any) -> dict[str, Any]:
    body = json.loads((EXAMPLE / "listing.json").read_text())
    body["agent_name"] = name or unique("calc")
    body["repository"]["url"] = str(EXAMPLE)
    for key, value in changes.items():
        body[key] = {**body[key], **value} if isinstance(body.get(key), dict) and isinstance(value, dict) else value
    return body


def _online(client: httpx.Client, count: int = 1) -> list[dict[str, Any]]:
    nodes = ok(call(client, "agora.hosting.list_nodes"))["nodes"]
    return nodes if sum(1 for n in nodes if n["status"] == "online") >= count else []


def market_hub(path: Path, database_url: str | None = None, python: str = sys.executable, **env: str) -> Iterator[HubProcess]:
    """A hub (run by ``python``) with its local hosting node online (``NODE_ENV``, plus ``env``), stopped afterwards."""
    hub = HubProcess(path, database_url=database_url, env={**NODE_ENV, **env}, python=python).start()
    try:
        with hub.client() as admin:
            until(lambda: _online(admin), "the hub's local hosting node never came online")
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="module")
def market_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    yield from market_hub(tmp_path_factory.mktemp("market-sqlite"))


@pytest.fixture(scope="module")
def market_postgres(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[HubProcess]:
    yield from market_hub(tmp_path_factory.mktemp("market-pg"), fresh_postgres_url(postgres_url))


@pytest.fixture(params=["sqlite", "postgres"])
def market(request: pytest.FixtureRequest) -> HubProcess:
    return request.getfixturevalue(f"market_{request.param}")


def running(client: httpx.Client, instance_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the instance runs and its agent has registered (the process is up and talking to the hub)."""

    def ready() -> dict[str, Any] | None:
        got = ok(client.get(f"/marketplace/instances/{instance_id}"))
        assert got["status"] in ("starting", "running"), got
        return got if got["status"] == "running" and got["health_status"]["last_heartbeat"] else None

    return until(ready, f"instance {instance_id} never became ready", timeout)


def settled(client: httpx.Client, instance_id: str, status: str, timeout: float = 30.0) -> dict[str, Any]:
    return until(
        lambda: (got := ok(client.get(f"/marketplace/instances/{instance_id}")))["status"] == status and got,
        f"instance {instance_id} never became {status}",
        timeout,
    )


def terminate(client: httpx.Client, instance_id: str, **params: Any) -> dict[str, Any]:
    """DELETE the instance: answered at once (202, stopping); returns it once its node has stopped it."""
    response = client.delete(f"/marketplace/instances/{instance_id}", params=params)
    assert response.status_code == 202 and response.json()["status"] == "stopping", response.text
    return settled(client, instance_id, "stopped")


def test_seed_003_customer_workflow(market: HubProcess) -> None:
    """Discover, create, details, execute, pause (the process stops, no time is billed), resume, dashboard,
    terminate with the final bill: seed 003's customer workflow, step for step."""
    with market.client() as admin, new_tenant(admin, market) as customer:
        published = ok(admin.post("/marketplace/agents", json=listing(category="math-" + unique("c"))))
        found = ok(customer.get("/marketplace/agents", params={"category": published["category"]}))
        assert [a["agent_name"] for a in found["agents"]] == [published["agent_name"]]
        info = found["agents"][0]["marketplace_info"]
        assert info["availability"] == {"available": True, "max_instances": 20, "current_instances": 0}
        assert info["pricing_info"] == {"model": "hybrid", "price": "0.002", "base_fee": "0.50", "currency": "USD", "units": {}}
        assert info["performance_metrics"]["tasks_measured"] == 0 and info["performance_metrics"]["success_rate"] is None

        created = ok(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"], "instance_config": {"env": {"GREETING": "hi"}}}))
        assert created["status"] == "starting" and created["node"] == "local"
        iid = created["instance_id"]
        details = running(customer, iid)
        assert details["pid"] and psutil.Process(details["pid"]).status() != psutil.STATUS_STOPPED
        assert details["instance_agent_name"] == created["instance_agent_name"]
        assert details["customer"] != "default" and details["instance_config"]["env"] == {"GREETING": "********"}  # write-only

        # The instance's agent is an ordinary agent of the customer's tenant.
        agent = ok(customer.get(f"/agents/{created['instance_agent_id']}"))
        assert agent["capabilities"] == ["calculation"]

        done = ok(customer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [1, 2, 3.5]}}))
        assert done["status"] == "completed" and done["result"] == {"sum": 6.5}
        done = ok(customer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "multiply", "parameters": {"numbers": [6, 7]}}))
        assert done["result"] == {"product": 42}

        sampled = until(lambda: (d := ok(customer.get(f"/marketplace/instances/{iid}")))["resource_usage"]["memory_mb"] and d, "never sampled")
        assert sampled["resource_usage"]["memory_mb"] > 5 and sampled["resource_usage"]["processes"] >= 1
        assert sampled["tasks_executed"] == 2 and sampled["health_status"]["healthy"] is True

        paused = ok(customer.post(f"/marketplace/instances/{iid}/pause"))
        assert paused["status"] == "paused"
        until(lambda: psutil.Process(details["pid"]).status() == psutil.STATUS_STOPPED, "the process never stopped")
        billed = paused["billing_info"]["running_seconds"]
        until(lambda: ok(customer.get(f"/marketplace/instances/{iid}"))["health_status"]["last_heartbeat"], "no heartbeat")
        time.sleep(0.8)
        still = ok(customer.get(f"/marketplace/instances/{iid}"))
        assert still["billing_info"]["running_seconds"] == billed, "paused time was billed"
        assert psutil.Process(details["pid"]).status() == psutil.STATUS_STOPPED
        expect_error(customer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add"}), 409, "conflict")
        expect_error(customer.post(f"/marketplace/instances/{iid}/pause"), 409, "conflict")

        resumed = ok(customer.post(f"/marketplace/instances/{iid}/resume"))
        assert resumed["status"] == "running"
        until(lambda: psutil.Process(details["pid"]).status() != psutil.STATUS_STOPPED, "the process never continued")
        done = ok(customer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [2, 2]}}))
        assert done["result"] == {"sum": 4}

        board = ok(customer.get("/marketplace/dashboard"))
        assert (board["total_instances"], board["running_instances"], board["paused_instances"]) == (1, 1, 0)
        assert Decimal(board["total_cost"]) > 0 and board["currency"] == "USD"
        assert board["recent_instances"][0]["instance_id"] == iid

        final = terminate(customer, iid)
        assert final["status"] == "stopped" and final["billing_info"]["final"] is True
        until(lambda: not psutil.pid_exists(details["pid"]) or psutil.Process(details["pid"]).status() == psutil.STATUS_ZOMBIE, "still running")
        bill = final["billing_info"]
        assert bill["requests"] == 3
        running_seconds = Decimal(str(bill["running_seconds"]))
        assert running_seconds > 0
        cost = bill["cost"]
        assert Decimal(cost["task_cost"]) == Decimal("0.002") * 3
        assert Decimal(cost["base_cost"]) == (Decimal("0.50") * running_seconds / 3600).quantize(Decimal("0.000001"))
        assert Decimal(cost["total_cost"]) == Decimal(cost["base_cost"]) + Decimal(cost["task_cost"])
        assert ok(customer.get(f"/marketplace/instances/{iid}"))["billing_info"] == bill, "the bill moved after the end"

        invoice = ok(call(customer, "agora.billing.invoice"))
        assert [line["instance_id"] for line in invoice["lines"]] == [iid]
        assert invoice["total"] == cost["total_cost"] and invoice["closed"] is False

        metrics = ok(customer.get("/marketplace/agents", params={"category": published["category"]}))["agents"][0]["marketplace_info"]
        assert metrics["customer_instances"] == 0 and metrics["total_instances"] == 1
        perf = metrics["performance_metrics"]
        assert perf["tasks_measured"] == 3 and perf["success_rate"] == 1.0 and perf["average_response_time"] > 0
        assert perf["availability"] == 1.0


def test_instances_belong_to_their_customer(market_sqlite: HubProcess) -> None:
    hub = market_sqlite
    with hub.client() as admin, new_tenant(admin, hub) as owner, new_tenant(admin, hub) as stranger:
        published = ok(admin.post("/marketplace/agents", json=listing()))
        iid = ok(owner.post("/marketplace/instances", json={"agent_id": published["agent_name"]}))["instance_id"]
        running(owner, iid)
        for response in (
            stranger.get(f"/marketplace/instances/{iid}"),
            stranger.post(f"/marketplace/instances/{iid}/pause"),
            stranger.post(f"/marketplace/instances/{iid}/resume"),
            stranger.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add"}),
            stranger.delete(f"/marketplace/instances/{iid}"),
            call(stranger, "agora.hosting.report", instance_id=iid, status="failed"),
            call(stranger, "agora.hosting.credentials", instance_id=iid),
        ):
            expect_error(response, 404, "not_found")
        assert ok(stranger.get("/marketplace/instances"))["instances"] == []
        assert ok(stranger.get("/marketplace/dashboard"))["total_instances"] == 0
        owner_tenant = ok(owner.get(f"/marketplace/instances/{iid}"))["customer"]
        expect_error(call(stranger, "agora.billing.invoice", customer=owner_tenant), 404, "not_found")
        assert ok(owner.get(f"/marketplace/instances/{iid}"))["status"] == "running"
        # The admin sees every customer's instances and bills.
        assert ok(call(admin, "agora.billing.invoice", customer=owner_tenant))["customer"] == owner_tenant
        terminate(owner, iid)


def test_bad_input_is_refused_clearly(market_sqlite: HubProcess) -> None:
    hub = market_sqlite
    with hub.client() as admin, new_tenant(admin, hub) as customer:
        no_start = listing()
        del no_start["build_config"]["start_command"]
        expect_error(admin.post("/marketplace/agents", json=no_start), 422, "invalid_argument")
        expect_error(customer.post("/marketplace/instances", json={"agent_id": "no-such-listing"}), 404, "not_found")

        huge = ok(admin.post("/marketplace/agents", json=listing(host_requirements={"min_memory_mb": 1_000_000})))
        error = expect_error(customer.post("/marketplace/instances", json={"agent_id": huge["listing_id"]}), 409, "conflict")
        assert error["details"]["reason"] == "no_capacity" and "MB free" in error["message"]
        if "docker" not in detected_runtimes():  # this machine's node has no container engine that answers
            boxed = ok(admin.post("/marketplace/agents", json=listing(build_config={"type": "docker", "start_command": "docker run calc"})))
            error = expect_error(customer.post("/marketplace/instances", json={"agent_id": boxed["listing_id"]}), 409, "conflict")
            assert "has no docker runtime" in error["message"]

        published = ok(admin.post("/marketplace/agents", json=listing(max_instances=1)))
        iid = ok(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
        error = expect_error(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"]}), 409, "conflict")
        assert error["details"] == {"reason": "max_instances", "max_instances": 1}
        running(customer, iid)
        error = expect_error(call(admin, "agora.marketplace.unlist", listing=published["listing_id"]), 409, "conflict")
        assert error["details"]["live_instances"] == [iid]

        slow = customer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "sleep", "parameters": {"seconds": 1.5}, "timeout": 0.3})
        error = expect_error(slow, 504, "deadline_exceeded")
        task = ok(call(customer, "agora.task.get", task_id=error["details"]["task_id"]))
        assert task["status"] == "cancelled"

        terminate(customer, iid)
        expect_error(customer.post(f"/marketplace/instances/{iid}/pause"), 409, "conflict")
        expect_error(customer.post(f"/marketplace/instances/{iid}/resume"), 409, "conflict")
        assert ok(customer.delete(f"/marketplace/instances/{iid}"))["status"] == "stopped"  # again: nothing changes
        assert ok(call(admin, "agora.marketplace.unlist", listing=published["listing_id"]))["status"] == "unlisted"
        expect_error(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"]}), 404, "not_found")
        assert ok(customer.get("/marketplace/instances", params={"listing": published["listing_id"]}))["instances"][0]["status"] == "stopped"


def test_an_instance_that_cannot_run_fails_with_its_last_output(market_sqlite: HubProcess) -> None:
    hub = market_sqlite
    crash = 'python -c "import sys; print(\'configuration missing: API_TOKEN\'); sys.exit(3)"'
    with hub.client() as admin, new_tenant(admin, hub) as customer:
        published = ok(admin.post("/marketplace/agents", json=listing(build_config={"start_command": crash})))
        iid = ok(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
        failed = settled(customer, iid, "failed")
        assert failed["restarts"] == 2 and failed["health_status"]["error_count"] == 3
        assert "code 3" in failed["health_status"]["last_error"]
        assert "configuration missing: API_TOKEN" in failed["last_output"]
        assert failed["billing_info"]["final"] is True

        broken = ok(admin.post("/marketplace/agents", json=listing(build_config={"build_command": "echo compiling; exit 7"})))
        iid = ok(customer.post("/marketplace/instances", json={"agent_id": broken["listing_id"]}))["instance_id"]
        failed = settled(customer, iid, "failed")
        assert "compiling" in failed["last_output"] and failed["pid"] is None
        assert ok(customer.delete(f"/marketplace/instances/{iid}"))["status"] == "stopped"


def test_a_crashed_instance_is_restarted(market_sqlite: HubProcess) -> None:
    """The first run crashes (its directory has no marker yet); the node restarts it and it serves."""
    hub = market_sqlite
    flaky = "test -f crashed-once || { touch crashed-once; echo first run crashes; exit 1; }; exec python agent.py"
    with hub.client() as admin, new_tenant(admin, hub) as customer:
        published = ok(admin.post("/marketplace/agents", json=listing(build_config={"start_command": flaky})))
        iid = ok(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
        ready = running(customer, iid)
        assert ready["restarts"] == 1 and "exited with code 1" in ready["health_status"]["last_error"]
        done = ok(customer.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [40, 2]}}))
        assert done["result"] == {"sum": 42}
        terminate(customer, iid)


def host_node(hub: HubProcess, tmp_path: Path, name: str, *options: str) -> subprocess.Popen[bytes]:
    """`agora host` for ``hub``, named ``name``, its data (and log) under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    args = [sys.executable, "-m", "agora", "host", "--hub", hub.url, "--key", hub.admin_key, "--name", name,
            "--data-dir", str(tmp_path / name), *options]  # fmt: skip
    return subprocess.Popen(args, env=env, stdout=open(tmp_path / f"{name}.log", "ab"), stderr=subprocess.STDOUT)


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[HubProcess, list[subprocess.Popen[bytes]]]]:
    hub = HubProcess(tmp_path / "hub").start()
    nodes = []
    for name, region, memory in (("eu-1", "eu", 4096), ("us-1", "us", 300)):
        nodes.append(host_node(hub, tmp_path, name, "--region", region, "--capacity-cpu", "2", "--capacity-mem", str(memory), "--sample-interval", "1"))
    with hub.client() as admin:
        until(lambda: _online(admin, 2), "the two hosting nodes never came online")
    yield hub, nodes
    for node in nodes:
        node.send_signal(signal.SIGTERM)
    for node in nodes:
        node.wait(15)
    hub.stop()


def test_co_location_across_two_hosting_nodes(two_nodes: tuple[HubProcess, list[subprocess.Popen[bytes]]]) -> None:
    hub, _ = two_nodes
    with hub.client() as admin, new_tenant(admin, hub) as customer:
        published = ok(admin.post("/marketplace/agents", json=listing()))
        first = ok(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"], "preferred_region": "us"}))
        assert first["node"] == "us-1"
        anywhere = ok(customer.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))
        assert anywhere["node"] == "eu-1"  # the most free memory
        beside = ok(customer.post("/marketplace/instances", json={
            "agent_id": published["listing_id"], "co_location": {"with_agent": first["instance_agent_name"], "reason": "low_latency_required"},
        }))  # fmt: skip
        assert beside["node"] == "us-1" and beside["co_located"] is True
        assert ok(customer.get(f"/marketplace/instances/{beside['instance_id']}"))["co_located_with"] == first["instance_id"]
        error = expect_error(
            customer.post("/marketplace/instances", json={"agent_id": published["listing_id"], "co_location": {"with_agent": first["instance_agent_id"]}}),
            409, "conflict",
        )  # fmt: skip
        assert "us-1" in error["message"] and "44 MB free" in error["message"]
        error = expect_error(
            customer.post("/marketplace/instances", json={"agent_id": published["listing_id"], "co_location": {"with_agent": "nobody"}}),
            404, "not_found",
        )  # fmt: skip
        for created in (first, anywhere, beside):
            running(customer, created["instance_id"])
            done = ok(customer.post(f"/marketplace/instances/{created['instance_id']}/execute", json={"endpoint": "add", "parameters": {"numbers": [1]}}))
            assert done["result"] == {"sum": 1}
        nodes = {n["name"]: n for n in ok(call(admin, "agora.hosting.list_nodes"))["nodes"]}
        assert (nodes["us-1"]["instances"], nodes["us-1"]["used_memory_mb"], nodes["eu-1"]["instances"]) == (2, 256, 1)
        for created in (first, anywhere, beside):
            terminate(customer, created["instance_id"])
        assert ok(call(admin, "agora.hosting.list_nodes"))["nodes"][1]["instances"] == 0


def test_the_customer_workflow_from_the_command_line(market_sqlite: HubProcess, tmp_path: Path) -> None:
    """`agora marketplace publish|discover`, `agora instance create|details|execute|pause|resume|terminate`,
    `agora dashboard`: seed 003's workflow step for step, as a customer would type it."""
    from .test_cli import agora, agora_json

    hub = market_sqlite
    body = listing(category="cli-" + unique("c"))
    body["repository"]["url"] = os.path.relpath(EXAMPLE, tmp_path)  # relative to the listing file
    (tmp_path / "listing.json").write_text(json.dumps(body))
    published = agora_json(hub, "marketplace", "publish", str(tmp_path / "listing.json"))
    assert published["repository"]["url"] == str(EXAMPLE)
    with hub.client() as admin:
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))["key"]
    found = agora_json(hub, "marketplace", "discover", "--category", body["category"], key=key)
    assert [a["agent_name"] for a in found["agents"]] == [body["agent_name"]]
    created = agora_json(hub, "instance", "create", body["agent_name"], "--env", "MODE=cli", "--memory-limit", "256", key=key)
    iid = created["instance_id"]
    with hub.client(key) as customer:
        running(customer, iid)
    shown = agora(hub, "instance", "details", iid, key=key)
    assert shown.returncode == 0 and f"{iid}  {body['agent_name']} v1  [running]" in shown.stdout, shown.stderr
    assert "isolation  sandbox " in shown.stdout  # how the node confines it
    assert agora(hub, "instance", "execute", iid, "add", "--params", '{"numbers": [20, 22]}', key=key).stdout.strip() == '{"sum": 42}'
    assert agora_json(hub, "instance", "pause", iid, key=key)["status"] == "paused"
    refused = agora(hub, "instance", "execute", iid, "add", key=key)
    assert refused.returncode == 1 and "paused" in refused.stderr
    assert agora_json(hub, "instance", "resume", iid, key=key)["status"] == "running"
    board = agora_json(hub, "dashboard", key=key)
    assert board["running_instances"] == 1 and board["recent_instances"][0]["instance_id"] == iid
    final = agora(hub, "instance", "terminate", iid, "--grace", "2", key=key)
    assert final.returncode == 0 and "[stopped]" in final.stdout and "(final)" in final.stdout, final.stderr
    assert agora(hub, "instance", "pause", "inst_0000000000000000", key=key).returncode == 1  # not found: exit 1


def test_deploy_is_answered_with_a_confirm_or_a_failure_message(market_sqlite: HubProcess) -> None:
    """Seed 001's flow: an agent asks for a deployment (co-located with another instance) and hears back by message."""
    hub = market_sqlite
    with hub.client() as admin, new_tenant(admin, hub) as customer:
        published = ok(admin.post("/marketplace/agents", json=listing()))
        orchestrator = ok(call(customer, "agora.agents.register", agent_name=unique("orchestrator")))
        with hub.client(orchestrator["agent_token"]) as orch:
            first = ok(call(orch, "agora.marketplace.deploy", agent_id=published["listing_id"]))
            assert first["outcome"] == "deploy_confirm" and first["payload"]["node"] == "local"
            beside = ok(call(orch, "agora.marketplace.deploy", agent_id=published["listing_id"],
                             co_location={"with_agent": first["payload"]["address"], "reason": "low_latency_required"}))  # fmt: skip
            assert beside["outcome"] == "deploy_confirm" and beside["payload"]["co_located"] is True
            # Seed 001's envelope, as its agents send it: the answer envelope is the outcome.
            envelope = {"id": "deploy-1", "type": "deploy", "sender": orchestrator["agent_id"], "to": ["agent.marketplace.orchestrator"],
                        "intent": "deploy_agent", "payload": {"agent_id": published["listing_id"], "customer_id": "customer-123",
                        "co_location": {"required": True, "with_agent": orchestrator["agent_id"], "reason": "low_latency_required"}}}  # fmt: skip
            refused = ok(orch.post("/agent/message", json=envelope))
            assert (refused["type"], refused["correlation"]) == ("deploy_failure", {"reply_to": "deploy-1"})
            assert "not a live marketplace instance" in refused["payload"]["reason"]
            inbox = ok(call(orch, "agora.messaging.receive", limit=10))["messages"]
            assert [(m["message_type"], m["from_agent"]) for m in inbox] == [
                ("deploy_confirm", "system"), ("deploy_confirm", "system"), ("deploy_failure", "system"),
            ]  # fmt: skip
            assert inbox[1]["content"] == beside["payload"] and inbox[2]["message_id"] == refused["id"]
        for deployed in (first, beside):
            terminate(customer, deployed["payload"]["instance_id"])


def test_a_restarted_hub_runs_its_instances_again_and_bills_none_of_the_downtime(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", env=NODE_ENV).start()
    try:
        with hub.client() as admin:
            until(lambda: _online(admin), "the local hosting node never came online")
            published = ok(admin.post("/marketplace/agents", json=listing()))
            iid = ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
            first = running(admin, iid)
            before, stopped_at = first["billing_info"]["running_seconds"], time.monotonic()
        hub.stop()  # the local node stops its instances with the hub
        assert not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE
        time.sleep(3)
        hub.start()
        with hub.client() as admin:
            again = until(lambda: (d := ok(admin.get(f"/marketplace/instances/{iid}")))["status"] == "running" and d["pid"] not in (None, first["pid"]) and d, "not run again")
            done = ok(admin.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [1, 1]}}))
            assert done["result"] == {"sum": 2}
            after, elapsed = ok(admin.get(f"/marketplace/instances/{iid}"))["billing_info"]["running_seconds"], time.monotonic() - stopped_at
            assert after - before <= elapsed - 2.5, (before, after, elapsed)  # the ≥ 3 s the node was away are not billed
            assert again["instance_agent_id"] == first["instance_agent_id"]
            terminate(admin, iid)
    finally:
        hub.stop()


def test_a_node_that_dies_stops_the_bill_and_takes_its_instances_back_when_it_returns(tmp_path: Path) -> None:
    """kill -9 of a hosting node: presence marks it offline and its instance is billed no more from the node's last
    heartbeat; the node started again kills the process the dead one left behind and runs the instance anew."""
    hub = HubProcess(tmp_path / "hub", env={"AGORA_OFFLINE_AFTER": "2"}).start()
    node = host_node(hub, tmp_path, "fragile", "--sample-interval", "0.5")
    try:
        with hub.client() as admin:
            until(lambda: _online(admin), "the node never came online")
            published = ok(admin.post("/marketplace/agents", json=listing()))
            iid = ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))["instance_id"]
            first = running(admin, iid)
            node.kill()
            node.wait(10)
            billed = lambda: ok(admin.get(f"/marketplace/instances/{iid}"))["billing_info"]["running_seconds"]  # noqa: E731
            until(lambda: not _online(admin), "the dead node was never marked offline")
            stopped_billing, time_of_check = billed(), time.monotonic()
            time.sleep(1.0)
            assert billed() == stopped_billing, "an instance on a dead node is still billed"
            assert psutil.pid_exists(first["pid"])  # the orphan still runs: nobody can vouch for it now

            node = host_node(hub, tmp_path, "fragile", "--sample-interval", "0.5")
            again = until(lambda: (d := ok(admin.get(f"/marketplace/instances/{iid}")))["pid"] not in (None, first["pid"]) and d, "not run again")
            until(lambda: not psutil.pid_exists(first["pid"]) or psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE, "the orphan survived")
            assert again["status"] == "running"
            until(lambda: billed() > stopped_billing, "billing never resumed")
            assert billed() - stopped_billing < time.monotonic() - time_of_check
            done = ok(admin.post(f"/marketplace/instances/{iid}/execute", json={"endpoint": "add", "parameters": {"numbers": [3, 4]}}))
            assert done["result"] == {"sum": 7}
            terminate(admin, iid)
    finally:
        node.terminate()
        node.wait(15)
        hub.stop()


def test_a_node_registering_is_a_sign_of_life(sqlite_hub: HubProcess) -> None:
    """A node registers as it starts: that is its latest heartbeat. Were it not, a node registering again after a
    quiet spell was active but silent, and presence took it offline just after (no instance could be placed)."""
    name = unique("node")
    with sqlite_hub.client() as admin:
        first = ok(call(admin, "agora.hosting.register_node", name=name, capacity_cpu=1, capacity_memory_mb=512))["node"]
        again = ok(call(admin, "agora.hosting.register_node", name=name, capacity_cpu=1, capacity_memory_mb=512))["node"]
    assert first["last_heartbeat"] is not None and again["last_heartbeat"] > first["last_heartbeat"]
    assert again["status"] == "online"
