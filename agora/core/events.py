"""Hub events: recorded in the store inside the transaction of the change they describe, then announced.

Recording makes them replayable (a live stream that reconnects reads what it missed from the store); announcing only
wakes the streams, on every replica, through the notifier.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event
from agora.core.context import Hub
from agora.store.ops import events as event_ops


def record(
    conn: Connection, tenant_id: str | None, type_: str, data: dict[str, Any], now: datetime, visible_to: str | None = None
) -> Event:
    event_ops.append(conn, tenant_id, type_, data, now, visible_to)
    return Event(type_, tenant_id, data)


async def announce(hub: Hub, events: list[Event]) -> None:
    """Wake every replica's readers of these events (and count them once: here, where they happened)."""
    hub.activity.saw(events)
    for event in events:
        await hub.notifier.publish(event)
