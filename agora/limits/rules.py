"""What the rate limits are: a rule (a rate and a burst) per principal kind and tool class, read from flags.

A rule is written ``RATE/UNIT[:BURST]`` (``200/s``, ``600/m:50``, ``5000/h``) or ``off``. The limits are keyed
``KIND.CLASS``: kinds ``agent``, ``customer``, ``admin``; classes ``read`` (tools that change nothing) and
``write`` (everything else); ``anonymous`` is the rule for requests without a key, per client address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
KINDS = ("agent", "customer", "admin")
CLASSES = ("read", "write")
_RULE = re.compile(r"^\s*(?P<count>\d+(?:\.\d+)?)\s*/\s*(?P<unit>[smh])\s*(?::\s*(?P<burst>\d+))?\s*$")


@dataclass(frozen=True)
class Rule:
    """``rate`` requests a second on average, up to ``burst`` at once (a token bucket of ``burst`` tokens)."""

    rate: float
    burst: int

    @property
    def interval(self) -> float:
        """Seconds one request's token takes to come back."""
        return 1.0 / self.rate

    def __str__(self) -> str:
        """As the flag writes it: ``300/s:600``, ``10/m:20``."""
        unit = "s" if self.rate >= 1 else "m" if self.rate * 60 >= 1 else "h"
        return f"{round(self.rate * UNITS[unit], 3):g}/{unit}:{self.burst}"


def parse_rule(text: str) -> Rule | None:
    """``200/s:400`` → Rule(200, 400); ``off`` → None. The burst defaults to one second's worth (at least 1)."""
    if text.strip().lower() == "off":
        return None
    m = _RULE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a rate: write RATE/UNIT[:BURST] (e.g. 200/s:400, 600/m) or off")
    rate = float(m["count"]) / UNITS[m["unit"]]
    if rate <= 0:
        raise ValueError(f"{text!r}: the rate must be more than 0 (or 'off')")
    burst = int(m["burst"]) if m["burst"] else max(1, round(rate))
    if burst < 1:
        raise ValueError(f"{text!r}: the burst must be at least 1")
    return Rule(rate, burst)


DEFAULT_RULES: dict[str, str] = {
    "agent.read": "2000/s:4000",
    "agent.write": "1000/s:2000",
    "customer.read": "2000/s:4000",
    "customer.write": "1000/s:2000",
    "admin.read": "off",
    "admin.write": "off",
    "anonymous": "20/s:100",
}


@dataclass(frozen=True)
class Policy:
    """Every limit in force. ``rules`` maps ``kind.class`` (and ``anonymous``) to a Rule, or None for no limit."""

    rules: dict[str, Rule | None] = field(default_factory=lambda: {k: parse_rule(v) for k, v in DEFAULT_RULES.items()})
    auth_failures: Rule | None = Rule(10 / 60, 20)  # failed key checks per client address: 20 at once, then 10 a minute
    lockout_after: int = 100  # failed key checks from one address within an hour that lock it out…
    lockout_seconds: float = 900.0  # …for this long
    a2a_public: Rule | None = Rule(10.0, 600)  # anonymous calls from one address to one public A2A front (600 a minute)

    def rule(self, kind: str, tool_class: str) -> Rule | None:
        return self.rules.get(f"{kind}.{tool_class}")

    @classmethod
    def from_flags(
        cls, entries: Iterable[str], *, auth_failures: str, lockout_after: int, lockout_seconds: float, a2a_public_per_minute: float = 600.0
    ) -> Policy:
        """The defaults, overridden by ``KEY=RULE`` entries (``agent.write=100/s:200``, ``anonymous=off``)."""
        texts = dict(DEFAULT_RULES)
        for entry in entries:
            for part in filter(None, (p.strip() for p in entry.split(","))):
                key, sep, rule = part.partition("=")
                key = key.strip().lower()
                if not sep or key not in texts:
                    known = ", ".join(sorted(texts))
                    raise ValueError(f"{part!r}: write KEY=RATE/UNIT[:BURST] or KEY=off, with KEY one of {known}")
                texts[key] = rule
        if lockout_after < 1:
            raise ValueError("the lockout threshold must be at least 1 failed attempt")
        if lockout_seconds <= 0:
            raise ValueError("the lockout must last more than 0 seconds")
        return cls(
            rules={k: parse_rule(v) for k, v in texts.items()},
            auth_failures=parse_rule(auth_failures),
            lockout_after=lockout_after,
            lockout_seconds=lockout_seconds,
            a2a_public=Rule(a2a_public_per_minute / 60.0, max(1, round(a2a_public_per_minute))),
        )
