"""Buckets on Redis, shared by every replica: the GCRA of ``buckets.py`` in one Lua script, on Redis's own clock.

Each take is one round trip (EVALSHA). If Redis cannot be reached, requests are let through and the failure is
logged (at most once every 10 s): a limiter must not take the hub down with it, and the database stays the truth.
After a failure the buckets are left alone until a PING in the background gets an answer (one a second): on a network
that drops everything each call would otherwise wait out its timeout, adding half a second to every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .buckets import Buckets
from .rules import Rule

log = logging.getLogger("agora.limits")

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + cost * interval
local allowed_at = new_tat - burst * interval
if allowed_at > now then return tostring(allowed_at - now) end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1)
end
return '0'
"""

_LOCK = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 1
"""


class RedisBuckets(Buckets):
    def __init__(self, url: str, prefix: str, *, timeout: float = 0.5):
        self._redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, client_name="agora-limits"
        )
        self._prefix = prefix
        self._take = self._redis.register_script(_TAKE)
        self._lock = self._redis.register_script(_LOCK)
        self._complained_at = -math.inf
        self._probe: asyncio.Task[None] | None = None  # while set and running, Redis is away: calls do not wait on it

    @property
    def away(self) -> bool:
        return self._probe is not None and not self._probe.done()

    async def take(self, key: str, rule: Rule, cost: int = 1) -> float:
        return await self._gcra(key, rule, cost, commit=True)

    async def peek(self, key: str, rule: Rule) -> float:
        return await self._gcra(key, rule, 1, commit=False)

    async def lock(self, key: str, seconds: float) -> None:
        if self.away:
            return
        try:
            await self._lock(keys=[self._prefix + key], args=[max(1, math.ceil(seconds * 1000))])
        except RedisError as exc:
            self._complain(exc)

    async def locked(self, key: str) -> float:
        if self.away:
            return 0.0
        try:
            ms = await self._redis.pttl(self._prefix + key)
        except RedisError as exc:
            self._complain(exc)
            return 0.0
        return ms / 1000 if ms > 0 else 0.0

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._redis.aclose()

    async def _gcra(self, key: str, rule: Rule, cost: int, *, commit: bool) -> float:
        if self.away:
            return 0.0
        try:
            wait = await self._take(keys=[self._prefix + key], args=[repr(rule.interval), rule.burst, cost, "1" if commit else "0"])
        except RedisError as exc:
            self._complain(exc)
            return 0.0
        return float(wait)

    def _complain(self, exc: Exception) -> None:
        if not self.away:
            self._probe = asyncio.get_running_loop().create_task(self._until_redis_answers(), name="agora-limits-probe")
        now = time.monotonic()
        if now - self._complained_at >= 10.0:
            self._complained_at = now
            log.warning("rate limits not enforced: Redis unreachable", extra={"error": str(exc)[:200]})

    async def _until_redis_answers(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(RedisError):
                await self._redis.ping()
                return
