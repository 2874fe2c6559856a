"""Periodic jobs every hub replica runs: each is idempotent, so N replicas running it at once do no harm."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import Connection

from agora.bus import Event
from agora.config import Settings
from agora.core import presence as live_presence
from agora.core import reputation, retention
from agora.core.activity import FLUSH_SECONDS
from agora.core.clock import ANCHOR_SECONDS
from agora.core.context import Hub
from agora.core.events import announce
from agora.core.services import activity as activity_service
from agora.core.services import admin as admin_service
from agora.core.services import agents as agent_service
from agora.core.services import billing as billing_service
from agora.core.services import budgets as budget_service
from agora.core.services import credits as credit_service
from agora.core.services import hosting as hosting_service
from agora.core.services import messaging as messaging_service
from agora.core.services import tasks as task_service
from agora.observability import metrics

log = logging.getLogger("agora.housekeeping")


async def purge_retained(hub: Hub) -> None:
    """Retention (``core/retention``): what each kind's policy keeps no longer goes, a small batch at a time."""
    purged = await retention.purge(hub.store, retention.policies(hub.settings), hub.clock.now(), metrics.count_purged)
    purged["activity"] = await activity_service.purge(hub)
    if any(purged.values()):
        log.info("retention purge", extra=purged)


async def presence(hub: Hub) -> None:
    """Silent agents go offline, and the instances of hosting nodes among them are down from the node's last heartbeat,
    in one transaction: a node is never shown offline while its instances are still billed as running."""
    now = hub.clock.now()
    offline_after = timedelta(seconds=hub.settings.offline_after_seconds)
    silent = await hub.store.read(agent_service.silent_agents, offline_after, now)  # a read: it holds up no writer

    def op(conn: Connection) -> tuple[list[Event], int]:
        events = agent_service.mark_silent_offline(conn, silent, offline_after, now)
        return events, hosting_service.down_on_absent_nodes(conn)

    events, moved = await hub.store.write(op)
    await announce(hub, events)
    if moved:
        log.warning("instances of offline hosting nodes are down", extra={"instances": moved})


async def purge_console_sessions(hub: Hub) -> None:
    if hub.sessions is not None:
        await hub.sessions.purge_expired()
    if hub.oauth is not None:
        await hub.oauth.purge_expired()


Job = Callable[[Hub], Awaitable[object]]

# (name, seconds between runs given the settings, job)
JOBS: list[tuple[str, Callable[[Settings], float], Job]] = [
    ("clock", lambda s: ANCHOR_SECONDS, lambda hub: hub.clock.follow_database(hub.store)),  # the database's time
    ("halt-refresh", lambda s: 1.0, admin_service.load_halt),  # another replica may halt or resume the system
    ("presence", lambda s: min(5.0, s.offline_after_seconds / 4), presence),
    ("live-presence", live_presence.interval, agent_service.touch_live),  # the agents with a live stream here
    ("reply-timeouts", lambda s: 0.2, messaging_service.expire_replies),  # request/reply: failure to the sender
    ("task-expiry", lambda s: 0.5, task_service.expire),  # leases that ran out, deadlines that passed
    ("retention", lambda s: 60.0, purge_retained),
    ("billing-periods", lambda s: 60.0, billing_service.close_periods),  # marketplace usage accrues in rows
    ("credits-spent", lambda s: 15.0, credit_service.pause_exhausted),  # customers who chose to pause when credits end
    ("credits-expiry", lambda s: 60.0, credit_service.expire),  # what is left of grants past their end
    ("budgets", lambda s: 15.0, budget_service.watch),  # alerts at thresholds, pauses at the limit
    ("reputation", lambda s: s.reputation_seconds, reputation.refresh),  # listings' reputations, from their records
    ("console-sessions", lambda s: 300.0, purge_console_sessions),  # expired sign-ins and OAuth grants
    ("activity", lambda s: FLUSH_SECONDS, activity_service.flush),  # this replica's counts, for the overview
]


async def _every(hub: Hub, name: str, interval: float, job: Job) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await job(hub)
        except Exception:  # noqa: BLE001 - a failed round is retried at the next one
            log.exception("housekeeping job failed", extra={"job": name})


def start(hub: Hub) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(_every(hub, name, every(hub.settings), job), name=name) for name, every, job in JOBS]
