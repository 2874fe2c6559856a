"""Hub events: recorded in the store inside the transaction of the change they describe, then announced.

Recording makes them replayable (a live stream that reconnects reads what it missed from the store); announcing only
wakes the streams, on every replica, through the notifier.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from agora.bus import Event, Notifier
from agora.store.ops import events as event_ops


def record(
    conn: Connection, tenant_id: str | None, type_: str, data: dict[str, Any], now: datetime, visible_to: str | None = None
) -> Event:
    event_ops.append(conn, tenant_id, type_, data, now, visible_to)
    return Event(type_, tenant_id, data)


async def announce(notifier: Notifier, events: list[Event]) -> None:
    for event in events:
        await notifier.publish(event)
