"""Token buckets kept as GCRA (the generic cell rate algorithm): one number per key, the time its bucket is full again.

A bucket of ``burst`` tokens refilling at ``rate`` a second is the same as remembering the "theoretical arrival
time" (TAT) of the next request: a request is allowed when ``TAT - now <= (burst - 1) * interval``, and then moves
the TAT one interval on. So a bucket costs one float and no timer, and an idle one is simply forgotten once its TAT
has passed. ``MemoryBuckets`` serves one hub; ``agora.limits.redis.RedisBuckets`` runs the same arithmetic in one
Lua script on Redis, so replicas share every bucket exactly.
"""

from __future__ import annotations

import abc
import time

from .rules import Rule


class Buckets(abc.ABC):
    """Where the buckets and lockouts live."""

    @abc.abstractmethod
    async def take(self, key: str, rule: Rule, cost: int = 1) -> float:
        """Take ``cost`` tokens from ``key``'s bucket: 0.0 if it had them, else the seconds until it will (nothing taken)."""

    @abc.abstractmethod
    async def peek(self, key: str, rule: Rule) -> float:
        """What ``take`` would answer for one token, taking nothing."""

    @abc.abstractmethod
    async def lock(self, key: str, seconds: float) -> None:
        """Lock ``key`` for ``seconds`` (a later lock that ends sooner does not shorten it)."""

    @abc.abstractmethod
    async def locked(self, key: str) -> float:
        """Seconds ``key`` stays locked, 0.0 if it is not."""

    async def close(self) -> None:
        return None


def gcra(tat: float, now: float, rule: Rule, cost: int) -> tuple[float, float]:
    """(new TAT, 0.0) when ``cost`` tokens are there, else (the TAT unchanged, seconds to wait)."""
    tat = max(tat, now)
    new_tat = tat + cost * rule.interval
    allowed_at = new_tat - rule.burst * rule.interval
    if allowed_at > now:
        return tat, allowed_at - now
    return new_tat, 0.0


class MemoryBuckets(Buckets):
    """The buckets of one hub process. At ``max_keys`` the idle ones are forgotten (an idle bucket is a full one);
    if a flood of client addresses keeps them all busy, all are forgotten, which only grants fresh buckets."""

    def __init__(self, max_keys: int = 200_000):
        self._tat: dict[str, float] = {}
        self._locks: dict[str, float] = {}
        self._max_keys = max_keys

    async def take(self, key: str, rule: Rule, cost: int = 1) -> float:
        now = time.monotonic()
        tat, wait = gcra(self._tat.get(key, now), now, rule, cost)
        if wait:
            return wait
        if len(self._tat) >= self._max_keys and key not in self._tat:
            self._forget_idle(now)
        self._tat[key] = tat
        return 0.0

    async def peek(self, key: str, rule: Rule) -> float:
        now = time.monotonic()
        return gcra(self._tat.get(key, now), now, rule, 1)[1]

    async def lock(self, key: str, seconds: float) -> None:
        until = time.monotonic() + seconds
        if until > self._locks.get(key, 0.0):
            if len(self._locks) >= self._max_keys:
                now = time.monotonic()
                self._locks = {k: v for k, v in self._locks.items() if v > now}
            self._locks[key] = until

    async def locked(self, key: str) -> float:
        until = self._locks.get(key)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._locks[key]
            return 0.0
        return left

    def _forget_idle(self, now: float) -> None:
        self._tat = {k: v for k, v in self._tat.items() if v > now}
        if len(self._tat) >= self._max_keys:
            self._tat.clear()
