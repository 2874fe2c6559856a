"""Health, administrative overrides (pause, resume, terminate, emergency halt) and the halt switch."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.context import CallContext, HaltState, Hub
from agora.core.events import announce, record
from agora.core.services import agents as agent_service
from agora.core.ids import new_id
from agora.store import migrate
from agora.store.ops import agents as agent_ops
from agora.store.ops import audit as audit_ops
from agora.store.ops import keys as key_ops
from agora.store.ops import system as system_ops
from agora_sdk.errors import InvalidArgument
from agora_sdk.wire.admin import (
    ComponentHealth,
    Health,
    HealthLevel,
    HealthRequest,
    Override,
    OverrideAction,
    OverrideResult,
)

from .audit import audit_entry

SYSTEM_WIDE = "system_wide"
HALT_KEY = "halt"
_ORDER = [HealthLevel.healthy, HealthLevel.degraded, HealthLevel.critical]


async def load_halt(hub: Hub) -> None:
    """Mirror the stored halt switch into memory (at start, and periodically for other replicas' overrides)."""
    value = await hub.store.read(system_ops.get, HALT_KEY)
    if not value:
        hub.halt = HaltState()
        return
    since = value.get("since")
    hub.halt = HaltState(
        halted=bool(value.get("halted")),
        override_id=value.get("override_id"),
        reason=value.get("reason", ""),
        since=datetime.fromisoformat(since) if since else None,
    )


async def health(ctx: CallContext, req: HealthRequest) -> Health:
    hub = ctx.hub
    components: dict[str, ComponentHealth] = {}
    started = time.perf_counter()
    try:
        revision = await hub.store.migration_revision()
        latency_ms = round((time.perf_counter() - started) * 1000, 2)
        current = revision == migrate.head_revision()
        components["database"] = ComponentHealth(
            status=HealthLevel.healthy if current else HealthLevel.degraded,
            detail=f"{hub.store.dialect}, schema {revision}" + ("" if current else f" (head is {migrate.head_revision()})"),
            data={"latency_ms": latency_ms, "engine": hub.store.dialect},
        )
        counts = await hub.store.read(agent_ops.counts, ctx.principal.tenant_scope())
        components["agents"] = ComponentHealth(status=HealthLevel.healthy, data={"by_status": counts["by_status"]})
    except Exception as exc:  # noqa: BLE001 - health reports failures instead of raising them
        components["database"] = ComponentHealth(status=HealthLevel.critical, detail=f"unreachable: {exc}"[:300])
    components["notifier"] = ComponentHealth(
        status=HealthLevel.healthy if hub.notifier.healthy() else HealthLevel.degraded, detail=type(hub.notifier).__name__
    )
    components["catalog"] = ComponentHealth(status=HealthLevel.healthy, data={"tools": len(hub.services)})
    components["system"] = ComponentHealth(
        status=HealthLevel.critical if hub.halt.halted else HealthLevel.healthy,
        detail=f"halted: {hub.halt.reason}" if hub.halt.halted else "accepting work",
        data={"override_id": hub.halt.override_id} if hub.halt.halted else {},
    )
    if req.component:
        components = {k: v for k, v in components.items() if k == req.component}
    worst = max((c.status for c in components.values()), key=_ORDER.index, default=HealthLevel.healthy)
    return Health(status=worst, components=components, timestamp=ctx.clock.now(), version=hub.version)


def _override_op(conn: Connection, ctx: CallContext, req: Override, override_id: str, now: datetime) -> list[Event]:
    """Apply the override and write its audit entry and events in one transaction."""
    events: list[Event] = []
    tenant_id = None
    if req.target_id == SYSTEM_WIDE:
        if req.action is OverrideAction.terminate:
            raise InvalidArgument(
                "terminate needs an agent target; use emergency_halt or pause for the whole system",
                details={"field": "target_id"},
            )
        halted = req.action is not OverrideAction.resume
        system_ops.put(
            conn,
            HALT_KEY,
            {"halted": halted, "override_id": override_id, "reason": req.reason, "since": now.isoformat(), "mode": req.action.value},
            now,
        )
    else:
        agent = agent_ops.resolve(conn, None, req.target_id)
        tenant_id = agent["tenant_id"]
        new_status = {
            OverrideAction.pause: "paused",
            OverrideAction.emergency_halt: "paused",
            OverrideAction.resume: "active",
            OverrideAction.terminate: "terminated",
        }[req.action]
        agent_ops.set_status(conn, None, [agent["agent_id"]], new_status)
        if req.action is OverrideAction.terminate:
            key_ops.revoke_agent_keys(conn, agent["agent_id"], now)
        changed = {**agent, "status": new_status}
        events += agent_service.status_changed(conn, changed, agent["status"], now, f"override.{req.action.value}")
    override = {"override_id": override_id, "target_id": req.target_id, "action": req.action.value}
    events.append(record(conn, tenant_id, "admin_override", override, now))
    audit_ops.append(
        conn,
        audit_entry(
            ctx,
            f"override.{req.action.value}",
            req.target_id,
            tenant_id,
            req.reason,
            now,
            {"override_id": override_id, "authority_invoked": req.priority if req.priority is not None else req.authority},
        ),
    )
    return events


async def override(ctx: CallContext, req: Override) -> OverrideResult:
    override_id = new_id("ovr")
    now = ctx.clock.now()
    events = await ctx.store.write(_override_op, ctx, req, override_id, now)
    ctx.hub.auth.forget()  # cached principals carry the agent's status
    if req.target_id == SYSTEM_WIDE:
        await load_halt(ctx.hub)
    await announce(ctx.hub, events)
    return OverrideResult(
        override_id=override_id,
        target_id=req.target_id,
        action=req.action,
        status="executed",
        executed_at=now,
        system_halted=ctx.hub.halt.halted,
    )
