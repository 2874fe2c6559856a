"""Abuse controls: rate limits per principal and tool class, per client address for anonymous requests, and a brake
on failed authentication that slows a source down and then locks it out.

Buckets live in this process on a single hub and in Redis when replicas share one (``--redis-url``), so a limit
holds exactly across replicas. A refusal is a ``RateLimited`` error (429) whose details carry
``retry_after_seconds``; the doors turn that into a ``Retry-After`` header.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from agora.observability import metrics
from agora_sdk.errors import RateLimited

from .buckets import Buckets, MemoryBuckets
from .rules import Policy, Rule, parse_rule

__all__ = ["Buckets", "MemoryBuckets", "Policy", "Rule", "Throttle", "client_address", "open_buckets", "parse_rule", "scope_source"]


def open_buckets(redis_url: str | None, prefix: str) -> Buckets:
    """In-process buckets for one hub; Redis ones (keys under ``prefix``) when replicas share ``redis_url``."""
    if not redis_url:
        return MemoryBuckets()
    from .redis import RedisBuckets

    return RedisBuckets(redis_url, prefix)


def client_address(host: str | None) -> str:
    """The source a per-address limit counts: the IPv4 address, or the /64 of an IPv6 one (what one host is given)."""
    if not host:
        return "unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def scope_source(scope: Mapping[str, Any]) -> str:
    """The source address of an ASGI request (after trusted proxies' X-Forwarded-For), as limits count it."""
    client = scope.get("client")
    return client_address(client[0] if client else None)


def _refusal(message: str, wait: float, **details: object) -> RateLimited:
    """A 429 whose ``retry_after_seconds`` is never 0: a wait under a millisecond is rounded up, not down."""
    return RateLimited(message, details={"retry_after_seconds": math.ceil(wait * 1000) / 1000, **details})


def _seconds(wait: float) -> str:
    """``0.004 s`` or ``12.5 s``: short waits in milliseconds' precision, so a refusal never reads "retry in 0.00 s"."""
    return f"{math.ceil(wait * 1000) / 1000:g} s" if wait < 10 else f"{wait:.1f} s"


class Throttle:
    def __init__(self, buckets: Buckets, policy: Policy):
        self.buckets = buckets
        self.policy = policy

    async def charge(self, who: str, kind: str, tool_class: str) -> None:
        """One request of ``who`` (a key or agent id) of principal kind ``kind`` in ``tool_class``; 429 past its rule."""
        rule = self.policy.rule(kind, tool_class)
        if rule is None:
            return
        wait = await self.buckets.take(f"{tool_class}:{who}", rule)
        if wait:
            metrics.count_rate_limited(kind, tool_class)
            raise _refusal(
                f"too many {tool_class} requests for this key (limit {rule}); retry in {_seconds(wait)}",
                wait, limit=str(rule), tool_class=tool_class,
            )  # fmt: skip

    async def anonymous(self, client: str) -> None:
        """One request without a key from ``client`` (see ``client_address``), whatever it is for."""
        await self._per_address(f"anon:{client}", self.policy.rules.get("anonymous"), "any")

    async def public_a2a(self, surface: str, client: str) -> None:
        """One anonymous request from ``client`` to a public A2A ``surface`` (an agent's front, the directory)."""
        await self._per_address(f"a2a:{surface}:{client}", self.policy.a2a_public, "a2a")

    async def _per_address(self, key: str, rule: Rule | None, tool_class: str) -> None:
        if rule is None:
            return
        wait = await self.buckets.take(key, rule)
        if wait:
            metrics.count_rate_limited("anonymous", tool_class)
            raise _refusal(f"too many requests without a key from your address; retry in {_seconds(wait)}", wait, limit=str(rule))

    async def before_key_check(self, client: str) -> None:
        """Refuse to check a key from a source that is locked out, or that failed too often lately (slow down)."""
        left = await self.buckets.locked(f"lock:{client}")
        if left:
            metrics.count_rate_limited("locked_out", "auth")
            raise _refusal(f"too many failed authentications from your address: locked out for {left:.0f} s", left, reason="locked_out")
        rule = self.policy.auth_failures
        if rule is not None and (wait := await self.buckets.peek(f"authfail:{client}", rule)):
            metrics.count_rate_limited("slowed_down", "auth")
            raise _refusal(f"too many failed authentications from your address; retry in {_seconds(wait)}", wait, reason="slowed_down")

    async def key_check_failed(self, client: str) -> None:
        """Count a refused key from ``client``; past ``lockout_after`` within an hour, lock the source out."""
        metrics.AUTH_FAILURES.inc()
        if self.policy.auth_failures is not None:
            await self.buckets.take(f"authfail:{client}", self.policy.auth_failures)
        window = Rule(self.policy.lockout_after / 3600.0, self.policy.lockout_after)
        await self.buckets.take(f"authlock:{client}", window)
        if await self.buckets.peek(f"authlock:{client}", window):  # that was the last failure the hour allows
            await self.buckets.lock(f"lock:{client}", self.policy.lockout_seconds)
            metrics.LOCKOUTS.inc()
