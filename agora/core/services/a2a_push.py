"""A2A push notifications: a task's webhooks get each of its events (an A2A StreamResponse), in order, at least once.

Configs live in the store with the position of the last event each webhook acknowledged (a 2xx). Every replica runs
a deliverer that wakes when an A2A task changes (key ``a2a:push``) and every second for retries, claims configs that
have events to send (one replica at a time per config), posts them with the configured credentials, and moves the
position only after a 2xx; a failure is retried with capped exponential backoff, so a webhook that was down gets
everything it missed, in order, when it comes back.

A webhook is reached through the egress policy of the task's caller (who alone may configure its webhooks): its URL
is checked when it is stored, and every connection again when it is made.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from datetime import timedelta
from typing import Any

import httpx

from agora.core.auth import is_admin_label
from agora.core.context import Hub
from agora.core.egress import display, http_url
from agora.core.ids import new_id
from agora.store.ops import a2a as a2a_ops
from agora.store.ops import a2a_push as push_ops
from agora_sdk.errors import InvalidArgument, NotFound
from agora_sdk.wire.common import HEADER_TEXT, redact_url

log = logging.getLogger("agora.a2a.push")

POST_TIMEOUT = 10.0  # seconds one webhook POST may take
CLAIM = timedelta(seconds=60)  # how long a deliverer holds a config it is posting to
BATCH = 50  # configs claimed at once, and events posted per config per round
RETRY_TICK = 1.0  # seconds between looks for retries that came due
BACKOFF_BASE, BACKOFF_CAP = 1.0, 300.0
WAKE_KEY = "a2a:push"


def public(config: dict[str, Any]) -> dict[str, Any]:
    """A config as the A2A TaskPushNotificationConfig JSON, without its secrets (write-only): no token, no
    credentials (the scheme stays), and none in the URL."""
    doc: dict[str, Any] = {"id": config["config_id"], "taskId": config["task_id"], "url": redact_url(config["url"])}
    if config["auth_scheme"]:
        doc["authentication"] = {"scheme": config["auth_scheme"]}
    return doc


def _check_header_text(config: dict[str, Any]) -> None:
    """The token and credentials go out as header values: refused here (without quoting them) if they cannot."""
    auth = config.get("authentication") or {}
    sent = {"token": config.get("token"), "authentication.scheme": auth.get("scheme"),
            "authentication.credentials": auth.get("credentials")}  # fmt: skip
    for field, value in sent.items():
        if value and (not isinstance(value, str) or len(value) > 4096 or not re.fullmatch(HEADER_TEXT, value)):
            raise InvalidArgument(
                f"a push config's {field} must be visible ASCII (words apart by single spaces), at most 4096 long",
                details={"field": field},
            )


async def checked(hub: Hub, config: dict[str, Any], caller: str) -> dict[str, Any]:
    """``config`` (A2A JSON) if its webhook is one the task's ``caller`` may have the hub post to, else a 400 naming
    the field (the same words for a name that does not resolve and an address the egress policy refuses)."""
    _check_header_text(config)
    url = config.get("url", "")
    try:
        parsed = http_url(url)
    except ValueError as exc:
        raise InvalidArgument(f"a push config needs an http(s) url: {exc}", details={"field": "url"}) from None
    if not await hub.egress.acting_for(is_admin_label(caller)).admits(parsed):
        where = redact_url(url)
        raise InvalidArgument(f"the hub does not send notifications to {where}: give a webhook on a public address", details={"field": "url"})
    return config


async def put(hub: Hub, task_id: str, config: dict[str, Any], from_start: bool) -> dict[str, Any]:
    """Store ``config`` (from ``checked``) for ``task_id``: its webhook gets every event from now on (or from the
    first)."""
    url = config["url"]
    auth = config.get("authentication") or {}
    now = hub.clock.now()

    def op(conn: Any) -> dict[str, Any]:
        row = {
            "task_id": task_id, "config_id": config.get("id") or new_id("push"), "url": url, "token": config.get("token") or None,
            "auth_scheme": auth.get("scheme") or None, "auth_credentials": auth.get("credentials") or None,
            "delivered_seq": 0 if from_start else a2a_ops.last_seq(conn, task_id), "attempts": 0, "next_attempt_at": now,
            "claimed_until": None, "last_error": None, "created_at": now,
        }  # fmt: skip
        return push_ops.put(conn, row)

    stored = await hub.store.write(op)
    hub.wakeups.wake([WAKE_KEY])
    return public(stored)


async def get(hub: Hub, task_id: str, config_id: str) -> dict[str, Any]:
    config = await hub.store.read(push_ops.get, task_id, config_id)
    if config is None:
        raise NotFound(f"no push config '{config_id}' on task {task_id}", details={"field": "id"})
    return public(config)


async def of_task(hub: Hub, task_id: str) -> list[dict[str, Any]]:
    return [public(c) for c in await hub.store.read(push_ops.of_task, task_id)]


async def remove(hub: Hub, task_id: str, config_id: str) -> None:
    await hub.store.write(push_ops.remove, task_id, config_id)


class PushDeliverer:
    def __init__(self, hub: Hub):
        self.hub = hub

    async def run(self) -> None:
        egress = self.hub.egress
        async with (
            egress.acting_for(admin=False).client(timeout=POST_TIMEOUT) as restricted,
            egress.acting_for(admin=True).client(timeout=POST_TIMEOUT) as admins,
        ):
            while True:
                with self.hub.wakeups.armed([WAKE_KEY]) as woken:
                    try:
                        claimed = await self._claim()
                        await asyncio.gather(*(self._deliver(admins if is_admin_label(c["caller"] or "") else restricted, c) for c in claimed))
                    except Exception:  # noqa: BLE001 - a failed round is retried at the next one
                        log.exception("push delivery round failed")
                        claimed = []
                    if not claimed:
                        await woken.wait(RETRY_TICK)

    async def _claim(self) -> list[dict[str, Any]]:
        now = self.hub.clock.now()
        if not await self.hub.store.read(push_ops.any_due, now):
            return []
        return await self.hub.store.write(push_ops.claim_due, now, now + CLAIM, BATCH)

    async def _deliver(self, http: httpx.AsyncClient, config: dict[str, Any]) -> None:
        store, key = self.hub.store, (config["task_id"], config["config_id"])
        try:
            for event in await store.read(a2a_ops.events_after, config["task_id"], config["delivered_seq"], BATCH):
                error = await self._post(http, config, event["body"])
                if error is not None:
                    retry_at = self.hub.clock.now() + _backoff(config["attempts"])
                    await store.write(push_ops.failed, *key, error, retry_at)
                    log.warning("push to %s failed: %s", display(config["url"]), error, extra={"task_id": key[0], "attempt": config["attempts"] + 1})
                    return
                await store.write(push_ops.delivered, *key, event["seq"])
            await store.write(push_ops.release, *key)
            self.hub.wakeups.wake([WAKE_KEY])  # more may have come meanwhile
        except Exception:
            await store.write(push_ops.failed, *key, "delivery failed in the hub", self.hub.clock.now() + _backoff(config["attempts"]))
            raise

    @staticmethod
    async def _post(http: httpx.AsyncClient, config: dict[str, Any], body: dict[str, Any]) -> str | None:
        headers = {"Content-Type": "application/json", "A2A-Version": "1.0"}
        if config["auth_scheme"]:
            headers["Authorization"] = f"{config['auth_scheme']} {config['auth_credentials'] or ''}".strip()
        if config["token"]:
            headers["X-A2A-Notification-Token"] = config["token"]
        try:
            response = await http.post(config["url"], json=body, headers=headers)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"
        return None if response.is_success else f"HTTP {response.status_code}"


def _backoff(attempts: int) -> timedelta:
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempts)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))
