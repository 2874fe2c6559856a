"""Hosting nodes: registration, placement of instances, the tasks that carry instance operations to a node, and what
a node reports back (state changes, crashes, resource samples).

A node is an ordinary agent (in the tenant of the key that registered it) with one extra row in ``hosting_nodes``.
The hub never reaches into a node: it assigns the node's agent tasks (``hosting.start``, ``hosting.pause``,
``hosting.resume``, ``hosting.stop``) and the node takes them with the SDK, so they inherit the queue's leases, retries
and wake-ups; the node answers with ``agora.hosting.report``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.auth import PrincipalKind, Scope, display_prefix, generate_key, hash_key
from agora.core.context import CallContext
from agora.core.events import announce, record
from agora.core.ids import new_id
from agora.core.services import agents as agent_service
from agora.core.services import tasks as task_service
from agora.store.ops import agents as agent_ops
from agora.store.ops import keys as key_ops
from agora.store.ops import marketplace as market_ops
from agora_sdk.errors import Conflict, NotFound
from agora_sdk.wire import marketplace as w
from agora_sdk.wire.common import Empty

NODE_CAPABILITY = "agora.hosting.node"
OPERATIONS = ("hosting.start", "hosting.pause", "hosting.resume", "hosting.stop")
NODE_SCOPES = sorted(s.value for s in (Scope.agents_read, Scope.agents_write, Scope.tasks_read, Scope.tasks_write, Scope.hosting))
# What an instance's own agent may do: be an agent in its customer's tenant and report the units it used, nothing more.
INSTANCE_SCOPES = sorted(
    s.value
    for s in (
        Scope.agents_read, Scope.agents_write, Scope.messaging_send, Scope.messaging_read, Scope.messaging_receive,
        Scope.tasks_read, Scope.tasks_write, Scope.usage_report,
    )
)  # fmt: skip


def _agent_key(conn: Connection, agent: dict[str, Any], scopes: list[str], name: str, created_by: str, now: datetime) -> tuple[str, list[str]]:
    """A fresh key for ``agent``; its earlier keys are revoked. Returns (key, revoked hashes)."""
    revoked = key_ops.revoke_agent_keys(conn, agent["agent_id"], now)
    token = generate_key()
    key_ops.insert_key(
        conn, key_hash=hash_key(token), prefix=display_prefix(token), kind=PrincipalKind.agent.value, name=name,
        tenant_id=agent["tenant_id"], agent_id=agent["agent_id"], scopes=scopes, created_by=created_by, now=now,
    )  # fmt: skip
    return token, revoked


def node_model(row: dict[str, Any]) -> w.Node:
    return w.Node.model_validate({**row, "status": "online" if row.get("status") in agent_ops.PRESENT else "offline"})


async def register_node(ctx: CallContext, req: w.NodeRegistration) -> w.NodeRegistered:
    """Register (or re-register) a node by name: its agent, and a new key for it."""
    p, now = ctx.principal, ctx.clock.now()

    def op(conn: Connection) -> tuple[dict[str, Any], str, list[str]]:
        existing = market_ops.node_by_name(conn, req.name)
        if existing is not None and existing["tenant_id"] != p.tenant_id:
            raise Conflict(f"hosting node '{req.name}' belongs to another tenant", details={"name": req.name})
        if existing is not None:  # a node that starts again was gone since it last showed a sign of life
            previous = agent_ops.resolve(conn, None, existing["agent_id"])
            went_down(conn, existing, previous["last_heartbeat"] or previous["registered_at"])
        fields = {
            "agent_name": f"node-{req.name}", "capabilities": [NODE_CAPABILITY], "service_tier": "basic",
            "description": f"Agora hosting node {req.name} ({req.region})", "metadata": {"hosting_node": req.name},
            "manifest": None, "a2a": None, "a2a_remote": None, "a2a_card_url": None, "a2a_token": None,
        }  # fmt: skip
        agent, _created = agent_service.register_in(conn, p.tenant_id, fields, now, None, None, [], p.label)
        # a node registers as it starts: a sign of life, or presence (finding it silent since its last heartbeat)
        # could take it offline just after, and place no instance on it
        agent = agent_ops.heartbeat(conn, agent["agent_id"], None, now)
        token, revoked = _agent_key(conn, agent, NODE_SCOPES, f"hosting node {req.name}", p.label, now)
        row = {
            "node_id": existing["node_id"] if existing else new_id("node"), "name": req.name, "tenant_id": p.tenant_id,
            "agent_id": agent["agent_id"], "region": req.region, "capacity_cpu": req.capacity_cpu,
            "capacity_memory_mb": req.capacity_memory_mb, "runtimes": [r.value for r in req.runtimes],
            "registered_at": existing["registered_at"] if existing else now, "updated_at": now,
        }  # fmt: skip
        market_ops.save_node(conn, row)
        return row, token, revoked

    row, token, revoked = await ctx.store.write(op)
    ctx.hub.auth.forget(revoked)
    await ctx.notifier.publish(Event("agent_registered", p.tenant_id))
    listed = next(n for n in await ctx.store.read(market_ops.nodes) if n["node_id"] == row["node_id"])
    return w.NodeRegistered(node=node_model(listed), agent_token=token)


def went_down(conn: Connection, node: dict[str, Any], since: datetime) -> int:
    """The node's running instances are down from ``since`` (its last sign of life): that time is not billed.
    They run again, and bill again, when the node reports them running."""
    moved = 0
    for inst in market_ops.instances(conn, None, node_id=node["node_id"], limit=100_000):
        if inst["period_state"] == "running":
            market_ops.switch_period(conn, inst, "down", max(since, inst["period_started_at"]))
            moved += 1
    return moved


def down_on_absent_nodes(conn: Connection) -> int:
    """The running instances of nodes that are not present (offline, inactive) are down from their last heartbeat."""
    gone = [n for n in market_ops.nodes(conn) if n["status"] not in agent_ops.PRESENT]
    return sum(went_down(conn, n, n["last_heartbeat"] or n["registered_at"]) for n in gone)


async def list_nodes(ctx: CallContext, _req: Empty) -> w.NodeList:
    return w.NodeList(nodes=[node_model(n) for n in await ctx.store.read(market_ops.nodes)])


def place(conn: Connection, listing: dict[str, Any], need_cpu: float, need_mem: int, region: str | None,
          beside: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
    """The node an instance goes to: online, with the listing's runtime and room for it; ``beside``'s node when
    co-located; the preferred region first, then the most free memory. 409 naming why when there is none."""
    runtime = listing["build_config"]["type"]
    candidates, reasons = [], []
    for node in market_ops.nodes(conn):
        why = _unfit(node, runtime, need_cpu, need_mem)
        if beside is not None and node["node_id"] != beside["node_id"]:
            continue
        if why:
            reasons.append(f"{node['name']}: {why}")
        else:
            candidates.append(node)
    if not candidates:
        where = f"the node of '{beside['agent_name']}'" if beside is not None else "no hosting node"
        detail = "; ".join(reasons) or "no hosting node is registered"
        raise Conflict(
            f"{where} can take this instance ({need_cpu:g} CPU, {need_mem} MB, {runtime}): {detail}",
            details={"reason": "no_capacity", "nodes": reasons},
        )
    free = lambda n: n["capacity_memory_mb"] - n["used_memory_mb"]
    return min(candidates, key=lambda n: (region is not None and n["region"] != region, -free(n), n["name"]))


def _unfit(node: dict[str, Any], runtime: str, need_cpu: float, need_mem: int) -> str | None:
    if node["status"] not in agent_ops.PRESENT:
        return f"offline ({node['status']})"
    if runtime not in node["runtimes"]:
        return f"has no {runtime} runtime"
    if node["capacity_cpu"] - node["used_cpu"] < need_cpu - 1e-9:
        return f"{node['capacity_cpu'] - node['used_cpu']:g} CPU free"
    if node["capacity_memory_mb"] - node["used_memory_mb"] < need_mem:
        return f"{node['capacity_memory_mb'] - node['used_memory_mb']} MB free"
    return None


def node_task(conn: Connection, node: dict[str, Any], operation: str, payload: dict[str, Any], actor: str, now: datetime) -> list[Event]:
    """Hand an instance operation to its node's agent, in the caller's transaction."""
    row = task_service.new_task_row(
        node["tenant_id"], operation, payload, actor, now, assignee=node["agent_id"], max_attempts=5, retry_backoff_seconds=0.5
    )
    return task_service.create_in(conn, row, actor, now)[2]


def instance_event(conn: Connection, inst: dict[str, Any], now: datetime, **data: Any) -> Event:
    """An ``instance_updated`` hub event in the customer's tenant (it also wakes callers waiting on the instance)."""
    return record(conn, inst["tenant_id"], "instance_updated", {"instance_id": inst["instance_id"], "status": inst["status"], **data}, now)


def _hosted(conn: Connection, ctx: CallContext, instance_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The instance and its node, if the caller is that node's agent (anyone else: the 404 of no such instance)."""
    inst = market_ops.instance(conn, instance_id, None, lock=True)
    node = market_ops.node(conn, inst["node_id"])
    if ctx.principal.agent_id != node["agent_id"] and not ctx.principal.is_admin:
        raise market_ops.no_instance(instance_id)
    return inst, node


async def assigned(ctx: CallContext, req: w.AssignedRequest) -> w.Assignments:
    """For a node (re)starting: the live instances placed on it, so that it runs them again."""

    def op(conn: Connection) -> list[dict[str, Any]]:
        if ctx.principal.is_admin:
            node = market_ops.node_by_name(conn, req.node) if req.node else None
            if req.node and node is None:
                raise NotFound(f"no hosting node '{req.node}'", details={"node": req.node})
        else:
            node = market_ops.node_of_agent(conn, ctx.principal.agent_id)
            if node is None:
                raise NotFound("this key is not a hosting node's", details={"agent": ctx.principal.agent_id})
        placed = market_ops.instances(conn, None, node_id=node["node_id"] if node else None, limit=100_000)
        return [i for i in placed if i["status"] in market_ops.LIVE]

    return w.Assignments(instances=[w.Assignment.model_validate(i) for i in await ctx.store.read(op)])


async def credentials(ctx: CallContext, req: w.InstanceRefInput) -> w.InstanceCredentials:
    """For the node starting an instance: a new key for the instance's agent (earlier ones revoked) and its env."""
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[dict[str, Any], dict[str, Any], str, list[str], dict[str, str]]:
        inst, _node = _hosted(conn, ctx, req.instance_id)
        if inst["status"] not in ("starting", "running"):
            raise Conflict(f"instance {inst['instance_id']} is {inst['status']}: it is not to be started", details={"status": inst["status"]})
        agent = agent_ops.resolve(conn, None, inst["agent_id"])
        token, revoked = _agent_key(conn, agent, INSTANCE_SCOPES, f"instance {inst['instance_id']}", ctx.principal.label, now)
        listing = market_ops.listing(conn, inst["listing_id"], None, listed_only=False, sees_all=True)
        env = {**listing["build_config"].get("env_vars", {}), **inst["config"].get("env", {})}
        return inst, agent, token, revoked, env

    inst, agent, token, revoked, env = await ctx.store.write(op)
    ctx.hub.auth.forget(revoked)
    return w.InstanceCredentials(instance_id=inst["instance_id"], agent_id=agent["agent_id"], agent_name=agent["agent_name"], agent_token=token, env=env)


async def report(ctx: CallContext, req: w.NodeReport) -> Empty:
    """A node's word on one of its instances: a state it reached, a crash it is recovering from, or a sample."""
    now = ctx.clock.now()

    def op(conn: Connection) -> tuple[list[Event], list[str]]:
        inst, _node = _hosted(conn, ctx, req.instance_id)
        changes: dict[str, Any] = {}
        if req.memory_mb is not None:
            changes.update(cpu_percent=req.cpu_percent, memory_mb=req.memory_mb, processes=req.processes, sampled_at=now)
        if req.output_tail is not None:
            changes["last_output"] = req.output_tail
        if req.error is not None:
            changes.update(last_error=req.error, error_count=inst["error_count"] + 1)
        if req.pid is not None:
            changes["pid"] = req.pid
        if req.isolation is not None:
            changes["spec"] = {**inst["spec"], "isolation": req.isolation.model_dump(mode="json")}
        events, revoked = _apply_report(conn, inst, req, changes, now)
        return events, revoked

    events, revoked = await ctx.store.write(op)
    ctx.hub.auth.forget(revoked)
    await announce(ctx.hub, events)
    return Empty()


def _apply_report(conn: Connection, inst: dict[str, Any], req: w.NodeReport, changes: dict[str, Any], now: datetime) -> tuple[list[Event], list[str]]:
    status, revoked = inst["status"], []
    if req.restarting:
        changes["restarts"] = inst["restarts"] + 1
        if inst["period_state"] == "running":
            inst = market_ops.switch_period(conn, inst, "down", now)
    elif req.status is w.InstanceStatus.running and status in ("starting", "running"):
        status = "running"
        changes["started_at"] = inst["started_at"] or now
        if inst["period_state"] != "running":
            inst = market_ops.switch_period(conn, inst, "running", now)
    elif req.status in (w.InstanceStatus.stopped, w.InstanceStatus.failed) and status not in ("stopped", "failed"):
        status = "failed" if req.status is w.InstanceStatus.failed and status != "stopping" else "stopped"
        revoked = end_instance(conn, inst, now)
        changes["stopped_at"] = now
    if status != inst["status"]:
        changes["status"] = status
    if changes:
        market_ops.update_instance(conn, inst["instance_id"], **changes)
    if status == inst["status"] and not req.restarting and req.status is None:
        return [], revoked  # a sample: no event for every one
    return [instance_event(conn, {**inst, "status": status}, now, restarting=req.restarting, error=req.error)], revoked


def end_instance(conn: Connection, inst: dict[str, Any], now: datetime) -> list[str]:
    """What stops with an instance: billing, its agent (terminated) and the agent's keys. Returns revoked hashes."""
    market_ops.switch_period(conn, inst, None, now)
    agent_ops.set_status(conn, None, [inst["agent_id"]], "terminated")
    return key_ops.revoke_agent_keys(conn, inst["agent_id"], now)


def _follow_operation(conn: Connection, t: dict[str, Any], now: datetime) -> list[Event]:
    """A node operation that failed for good (the node could not build or start it, or never took it)."""
    if t["status"] not in ("failed", "dead_letter") or t["task_type"] != "hosting.start":
        return []
    try:
        inst = market_ops.instance(conn, t["payload"]["instance_id"], None, lock=True)
    except NotFound:
        return []
    if inst["status"] != "starting":
        return []
    end_instance(conn, inst, now)
    error = t.get("last_error") or "the hosting node could not start it"
    market_ops.update_instance(conn, inst["instance_id"], status="failed", stopped_at=now, last_error=error, error_count=inst["error_count"] + 1)
    return [instance_event(conn, {**inst, "status": "failed"}, now, error=error)]


task_service.follow(_follow_operation, task_types=OPERATIONS)
