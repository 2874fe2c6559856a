"""Customer instances of marketplace listings: create (placed on a hosting node), view, pause, resume, terminate,
execute. An instance belongs to its customer's tenant: anyone else gets a 404.

Every change is one transaction that moves the instance, closes or opens its usage period, sets its agent's status
(a paused instance's agent is ``paused``, so nothing is routed to it) and hands the node its operation as a task.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection

from agora.bus import Event
from agora.core import billing
from agora.core.context import CallContext
from agora.core.events import announce
from agora.core.ids import new_id
from agora.core.services import agents as agent_service
from agora.core.services import billing as billing_service
from agora.core.services import budgets, hosting, messaging, task_output
from agora.core.services import tasks as task_service
from agora.store.ops import agents as agent_ops
from agora.store.ops import marketplace as market_ops
from agora.store.ops import tasks as task_ops
from agora_sdk.errors import BudgetExceeded, Conflict, DeadlineExceeded, InvalidArgument, NotFound
from agora_sdk.wire import marketplace as w
from agora_sdk.wire.messaging import SendMessage

FINISHED_TASK = ("completed", "failed", "cancelled", "dead_letter")
T = TypeVar("T")


async def create(ctx: CallContext, req: w.CreateInstance) -> w.InstanceCreated:
    """Place an instance on a node, create its agent in the caller's tenant and ask the node to start it."""
    p, now = ctx.principal, ctx.clock.now()

    def op(conn: Connection) -> tuple[dict[str, Any], dict[str, Any], list[Event]]:
        market_ops.lock_placement(conn)
        listing = market_ops.listing(conn, req.agent_id, p.tenant_id, sees_all=p.is_admin)
        budgets.refuse_over_budget(conn, p.tenant_id, now)
        live = market_ops.instance_counts(conn, [listing["listing_id"]], None).get(listing["listing_id"], {"live": 0})["live"]
        if live >= listing["max_instances"]:
            raise Conflict(
                f"listing '{listing['agent_name']}' already runs its maximum of {listing['max_instances']} instances",
                details={"reason": "max_instances", "max_instances": listing["max_instances"]},
            )
        needs = listing["host_requirements"]
        cpu = req.instance_config.cpu_limit or needs["min_cpu_cores"]
        mem = req.instance_config.memory_limit or needs["min_memory_mb"]
        if cpu < needs["min_cpu_cores"] or mem < needs["min_memory_mb"]:
            raise InvalidArgument(
                f"'{listing['agent_name']}' needs at least {needs['min_cpu_cores']:g} CPU and {needs['min_memory_mb']} MB",
                details={"field": "instance_config", "host_requirements": needs},
            )
        beside = _co_location_target(conn, p.tenant_id, req, needs)
        node = hosting.place(conn, listing, cpu, mem, req.preferred_region or needs.get("preferred_region"), beside)
        instance_id = new_id("inst")
        spec = {
            "listing_name": listing["agent_name"], "listing_id": listing["listing_id"], "version": listing["version"],
            "repository": listing["repository"], "build_config": listing["build_config"], "memory_limit_mb": mem, "cpu_limit": cpu,
        }  # fmt: skip
        agent, _ = agent_service.register_in(conn, p.tenant_id, _agent_fields(listing, instance_id), now, None, None, [], p.label)
        inst = {
            "instance_id": instance_id, "tenant_id": p.tenant_id, "listing_id": listing["listing_id"],
            "listing_version": listing["version"], "node_id": node["node_id"], "agent_id": agent["agent_id"],
            "status": "starting", "config": req.instance_config.model_dump(mode="json"), "spec": spec,
            "pricing": listing["pricing"], "cpu_reserved": cpu, "memory_reserved_mb": mem,
            "co_located_with": beside["instance_id"] if beside else None, "pid": None, "restarts": 0, "error_count": 0,
            "last_error": None, "last_output": [], "cpu_percent": None, "memory_mb": None, "processes": None,
            "sampled_at": None, "period_state": None, "period_started_at": None, "created_at": now, "started_at": None,
            "stopped_at": None,
        }  # fmt: skip
        market_ops.insert_instance(conn, inst)
        events = hosting.node_task(conn, node, "hosting.start", {"instance_id": instance_id, **spec}, p.label, now)
        return inst, node, events + [hosting.instance_event(conn, inst, now, node=node["name"])]

    inst, node, events = await ctx.store.write(op)
    await announce(ctx.hub, events)
    view = await _view(ctx, inst["instance_id"])
    return w.InstanceCreated(
        instance_id=inst["instance_id"], status=view.status, node=node["name"], instance_agent_id=inst["agent_id"],
        instance_agent_name=view.instance_agent_name, co_located=inst["co_located_with"] is not None, instance=view,
    )  # fmt: skip


def _agent_fields(listing: dict[str, Any], instance_id: str) -> dict[str, Any]:
    """The instance's agent, named after the listing and the id's last 8 digits: random ones (the first are the second
    the id was made in), so that two instances of a listing never share a name."""
    return {
        "agent_name": f"{listing['agent_name']}-{instance_id[-8:]}",
        "capabilities": listing["capabilities"], "service_tier": "basic", "description": listing["description"],
        "metadata": {"marketplace_instance": instance_id, "listing_id": listing["listing_id"]},
        "manifest": None, "a2a": None, "a2a_remote": None, "a2a_card_url": None, "a2a_token": None,
    }  # fmt: skip


def _co_location_target(conn: Connection, tenant_id: str, req: w.CreateInstance, needs: dict[str, Any]) -> dict[str, Any] | None:
    """The live instance (of the caller) that the new one must share a node with, if any."""
    if req.co_location is None:
        if needs.get("co_location_required"):
            raise InvalidArgument(
                "this listing must be placed beside another agent: give co_location.with_agent", details={"field": "co_location"}
            )
        return None
    agent = agent_ops.resolve(conn, tenant_id, req.co_location.with_agent)
    inst = market_ops.instance_of_agent(conn, agent["agent_id"])
    if inst is None or inst["status"] not in market_ops.LIVE:
        if not req.co_location.required:
            return None
        raise Conflict(
            f"'{req.co_location.with_agent}' is not a live marketplace instance, so nothing can be placed beside it",
            details={"reason": "co_location_impossible", "with_agent": req.co_location.with_agent},
        )
    return {**inst, "agent_name": agent["agent_name"]}


async def _view(ctx: CallContext, instance_id: str) -> w.Instance:
    return (await _views(ctx, lambda conn: [market_ops.instance(conn, instance_id, ctx.principal.tenant_scope())]))[0]


async def _views(ctx: CallContext, select_rows: Any) -> list[w.Instance]:
    now = ctx.clock.now()

    def op(conn: Connection) -> list[w.Instance]:
        insts = select_rows(conn)
        figures = billing_service.usage(conn, insts, now)
        return [_model(conn, inst, figures, now) for inst in insts]

    return await ctx.store.read(op)


def _model(conn: Connection, inst: dict[str, Any], figures: dict[str, dict[str, Any]], now: datetime) -> w.Instance:
    agent = agent_ops.resolve(conn, None, inst["agent_id"])
    node = market_ops.node(conn, inst["node_id"])
    own = figures[inst["instance_id"]]
    healthy = inst["status"] == "running" and agent["status"] in agent_ops.PRESENT
    return w.Instance(
        instance_id=inst["instance_id"], listing_id=inst["listing_id"], listing_version=inst["listing_version"],
        agent_name=inst["spec"]["listing_name"], instance_agent_id=inst["agent_id"], instance_agent_name=agent["agent_name"],
        customer=inst["tenant_id"], status=inst["status"], node=node["name"],
        co_located_with=inst["co_located_with"], pid=inst["pid"],
        instance_config=w.ShownInstanceConfig.model_validate(inst["config"]),
        created_at=inst["created_at"], started_at=inst["started_at"], stopped_at=inst["stopped_at"],
        uptime_seconds=own["running"] / billing.MICROS_PER_SECOND, restarts=inst["restarts"],
        tasks_executed=own["requests"],
        resource_usage=w.ResourceUsage(
            cpu_percent=inst["cpu_percent"], memory_mb=inst["memory_mb"], processes=inst["processes"], sampled_at=inst["sampled_at"]
        ),
        health_status=w.Health(
            healthy=healthy, last_heartbeat=agent["last_heartbeat"], error_count=inst["error_count"], last_error=inst["last_error"]
        ),
        billing_info=billing_service.bill(inst, figures),
        last_output=inst["last_output"],
        isolation=inst["spec"].get("isolation"),
    )  # fmt: skip


async def get(ctx: CallContext, req: w.InstanceRefInput) -> w.Instance:
    return await _view(ctx, req.instance_id)


async def list_instances(ctx: CallContext, req: w.ListInstances) -> w.InstanceList:
    scope = ctx.principal.tenant_scope()
    found: dict[str, str | None] = {}

    def rows(conn: Connection) -> list[dict[str, Any]]:
        listing_id = None
        if req.listing:
            p = ctx.principal
            listing_id = market_ops.listing(conn, req.listing, p.tenant_id, listed_only=False, sees_all=p.is_admin)["listing_id"]
        status = req.status.value if req.status else None
        page, found["next"] = market_ops.instances_page(conn, scope, status=status, listing_id=listing_id, limit=req.limit, cursor=req.cursor)
        return page

    return w.InstanceList(instances=await _views(ctx, rows), next_cursor=found["next"])


def _change(ctx: CallContext, instance_id: str, allowed: tuple[str, ...], verb: str, done: tuple[str, ...] = ()) -> Any:
    """Read the instance for a change, refusing (409) unless it is in one of ``allowed`` states; None if it is in one
    of ``done`` (the change was made already: asking again changes nothing)."""

    def check(conn: Connection) -> dict[str, Any] | None:
        inst = market_ops.instance(conn, instance_id, ctx.principal.tenant_scope(), lock=True)
        if inst["status"] in done:
            return None
        if inst["status"] not in allowed:
            raise Conflict(f"instance {instance_id} is {inst['status']}: it cannot be {verb}", details={"status": inst["status"]})
        return inst

    return check


async def pause(ctx: CallContext, req: w.InstanceRefInput) -> w.Instance:
    """Stop the process group (SIGSTOP), routing (its agent is paused) and billing, at once."""
    await _move(ctx, req.instance_id, ("running",), "paused", "paused", "paused", "hosting.pause", {})
    return await _view(ctx, req.instance_id)


async def resume(ctx: CallContext, req: w.InstanceRefInput) -> w.Instance:
    await _move(ctx, req.instance_id, ("paused",), "resumed", "running", "running", "hosting.resume", {})
    return await _view(ctx, req.instance_id)


async def _move(
    ctx: CallContext, instance_id: str, allowed: tuple[str, ...], verb: str, status: str, period: str | None,
    operation: str, extra: dict[str, Any], done: tuple[str, ...] = (),
) -> None:  # fmt: skip
    now = ctx.clock.now()
    check = _change(ctx, instance_id, allowed, verb, done)

    def op(conn: Connection) -> list[Event]:
        inst = check(conn)
        if inst is None:
            return []
        if period is None:
            hosting.end_instance(conn, inst, now)
        else:
            market_ops.switch_period(conn, inst, period, now)
            agent_ops.set_status(conn, None, [inst["agent_id"]], "paused" if status == "paused" else "active")
        market_ops.update_instance(conn, instance_id, status=status)
        node = market_ops.node(conn, inst["node_id"])
        events = hosting.node_task(conn, node, operation, {"instance_id": instance_id, **extra}, ctx.principal.label, now)
        return events + [hosting.instance_event(conn, {**inst, "status": status}, now)]

    events = await ctx.store.write(op)
    ctx.hub.auth.forget()  # cached principals carry the agent's status (paused) and its keys (revoked)
    await announce(ctx.hub, events)


async def terminate(ctx: CallContext, req: w.Terminate) -> w.Instance:
    """Billing and routing end now; the node stops the process in the background (SIGTERM, SIGKILL after the grace
    period), so the answer is at once: 202 with the instance ``stopping``, which becomes ``stopped`` (final bill) when
    the node confirms. Asking again while it stops changes nothing; a failed instance is simply marked stopped."""
    inst = await ctx.store.read(market_ops.instance, req.instance_id, ctx.principal.tenant_scope())
    if inst["status"] == "failed":
        await ctx.store.write(lambda conn: market_ops.update_instance(conn, req.instance_id, status="stopped"))
    elif inst["status"] != "stopped":
        live = tuple(s for s in market_ops.LIVE if s != "stopping")
        extra = {"grace_seconds": req.grace_seconds}
        await _move(ctx, req.instance_id, live, "terminated", "stopping", None, "hosting.stop", extra, done=("stopping", "stopped"))
    view = await _view(ctx, req.instance_id)
    ctx.accepted = view.status == "stopping"
    return view


async def _until(ctx: CallContext, key: str, read: Callable[[], Awaitable[T]], done: Callable[[T], bool], deadline: float) -> T:
    """Read until ``done`` or the deadline, parked on wake-up ``key`` in between (armed before each read)."""
    while True:
        with ctx.hub.wakeups.armed([key]) as woken:
            value = await read()
            if done(value) or time.monotonic() >= deadline:
                return value
            await woken.wait(max(0.0, deadline - time.monotonic()))


async def execute(ctx: CallContext, req: w.Execute) -> w.Executed:
    """Run one task (type ``endpoint``) on this instance and wait for its result; past ``timeout`` it is cancelled
    and the caller gets 504."""
    p, now, started = ctx.principal, ctx.clock.now(), time.monotonic()
    check = _change(ctx, req.instance_id, ("running", "starting"), "given work")

    def op(conn: Connection) -> tuple[dict[str, Any], list[Event]]:
        inst = check(conn)
        budgets.refuse_over_budget(conn, inst["tenant_id"], now, inst)
        row = task_service.new_task_row(
            inst["tenant_id"], req.endpoint, req.parameters, p.agent_id or p.label, now,
            assignee=inst["agent_id"], max_attempts=1,
        )  # fmt: skip
        task, _created, events = task_service.create_in(conn, row, p.label, now)
        return task, events

    task, events = await ctx.store.write(op)
    await announce(ctx.hub, events)
    async with task_output.relayed(ctx.hub, task["task_id"]):  # its output, as it comes, to a door that passes progress on
        finished = await _until(
            ctx, f"task:{task['task_id']}", lambda: ctx.store.read(task_ops.get, task["task_id"], None),
            lambda t: t["status"] in FINISHED_TASK, started + req.timeout,
        )  # fmt: skip
    if finished["status"] not in FINISHED_TASK:
        await _cancel_late(ctx, task["task_id"], req.timeout)
        raise DeadlineExceeded(
            f"instance {req.instance_id} did not finish '{req.endpoint}' within {req.timeout:g} s; the task was cancelled",
            details={"task_id": task["task_id"], "timeout": req.timeout},
        )
    return w.Executed(
        instance_id=req.instance_id, task_id=task["task_id"], status=finished["status"], result=finished["result"],
        error=finished["last_error"], duration_seconds=round(time.monotonic() - started, 6),
    )  # fmt: skip


async def _cancel_late(ctx: CallContext, task_id: str, timeout: float) -> None:
    def op(conn: Connection) -> list[Event]:
        try:
            moved = task_ops.cancel(conn, task_id, None, ctx.principal.label, f"execute timed out after {timeout:g} s", ctx.clock.now())
        except Conflict:  # it finished in the meantime
            return []
        return task_service.record_transitions(conn, [moved], ctx.clock.now())

    await announce(ctx.hub, await ctx.store.write(op))


async def deploy(ctx: CallContext, req: w.Deploy) -> w.Deployed:
    """Seed 001's deploy flow: create the instance (co-located if asked), then tell the requester with a
    ``deploy_confirm`` or ``deploy_failure`` message from the hub. A refusal is an answer, not an error; an unknown
    ``reply_to`` is an error, found before anything is created (a retried deploy must not leave instances behind)."""
    if req.reply_to is not None:
        await messaging.check_recipient(ctx, req.reply_to)
    instance: w.InstanceCreated | None = None
    try:
        instance = await create(ctx, w.CreateInstance.model_validate(req.model_dump(exclude={"reply_to"}, exclude_unset=True)))
    except (Conflict, NotFound, InvalidArgument, BudgetExceeded) as exc:
        outcome, intent = "deploy_failure", "deploy_failed"
        payload = {"agent_id": req.agent_id, "reason": exc.message, "code": exc.code, "details": exc.details}
    else:
        outcome, intent = "deploy_confirm", "agent_deployed"
        payload = {
            "agent_id": req.agent_id, "instance_id": instance.instance_id, "address": instance.instance_agent_name,
            "instance_agent_id": instance.instance_agent_id, "node": instance.node, "co_located": instance.co_located,
        }  # fmt: skip
    to = req.reply_to or ctx.principal.agent_id
    message_id = None
    if to is not None:
        hub_voice = dataclasses.replace(ctx, principal=dataclasses.replace(ctx.principal, agent_id=None))  # sent by 'system'
        receipt = await messaging.send(hub_voice, SendMessage(to_agent=to, content=payload, message_type=outcome, intent=intent))
        message_id = receipt.message_id
    return w.Deployed(outcome=outcome, payload=payload, message_id=message_id, instance=instance)
