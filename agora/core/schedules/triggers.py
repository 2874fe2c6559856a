"""When a schedule fires: a cron expression, an interval or a single time, in an IANA time zone.

The cron grammar and its walk through local time are ``cronsim``'s (the library Healthchecks.io runs on, kept up and
small; ``croniter`` changed hands and had been marked unmaintained, and APScheduler's ``CronTrigger`` comes with a
scheduler Agora does not want). Time zones are the standard library's ``zoneinfo`` (with ``tzdata`` where the system
has no database). Daylight-saving changes are cronsim's, which are Debian cron's: a local time that does not exist
(02:30 when clocks go from 02:00 to 03:00) fires once, at the change (03:00); one that happens twice (02:30 when
clocks go back) fires once, the first time; expressions that name every minute or hour (``*/15 * * * *``) follow
real time through both. An interval counts real seconds from its anchor (``start_at``, else when the schedule was
made); ``at`` names one local time (one that does not exist is read with the offset from before the change).
``cron-descriptor`` puts an expression into words for people.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cron_descriptor import get_description
from cronsim import CronSim, CronSimError

from agora_sdk.errors import InvalidArgument

ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}  # fmt: skip
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_INTERVAL = re.compile(r"^every\s+((?:\d+\s*[smhd]\s*)+)$")
_PART = re.compile(r"(\d+)\s*([smhd])")


@dataclass(frozen=True)
class Trigger:
    """A parsed trigger: ``kind`` is cron, interval or at."""

    kind: str
    text: str  # as the user wrote it (trimmed)
    zone: ZoneInfo
    cron: str | None = None  # five fields, aliases expanded
    every: timedelta | None = None
    at: datetime | None = None  # UTC

    def after(self, moment: datetime, anchor: datetime) -> datetime | None:
        """The first tick strictly after ``moment`` (UTC), or None when there is none (an ``at`` in the past)."""
        return next(self.ticks(moment, anchor), None)

    def ticks(self, moment: datetime, anchor: datetime) -> Iterator[datetime]:
        """The ticks strictly after ``moment``, in order, as UTC times."""
        if self.cron is not None:
            local = moment.astimezone(self.zone)
            for tick in CronSim(self.cron, local):
                yield tick.astimezone(timezone.utc)
        elif self.every is not None:
            step = self.every.total_seconds()
            passed = (moment - anchor).total_seconds()
            n = max(0, int(passed // step) + 1) if passed >= 0 else 0
            while True:
                tick = anchor + timedelta(seconds=n * step)
                if tick > moment:
                    yield tick
                n += 1
        elif self.at is not None and self.at > moment:
            yield self.at

    def describe(self) -> str:
        """The trigger in words, for people."""
        zone = "" if self.zone.key == "UTC" else f" ({self.zone.key})"
        if self.cron is not None:
            return get_description(self.cron) + zone
        if self.every is not None:
            return f"Every {_duration(self.every)}"
        assert self.at is not None
        return f"Once, at {self.at.astimezone(self.zone):%Y-%m-%d %H:%M}{zone}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(f"unknown time zone '{name}' (an IANA name such as Europe/Berlin)", details={"field": "timezone"}) from None


def parse(text: str, zone_name: str = "UTC", min_interval: float = 0.0) -> Trigger:
    """``text`` as a trigger: a cron expression (five fields, or an alias such as ``@daily``), ``every 5m`` (units
    s, m, h, d, combinable: ``every 1h30m``) or ``at 2026-12-01T09:00`` (local to ``zone_name``). 400 naming the field
    ``trigger`` when it is none of them."""
    tz, text = zone(zone_name), " ".join(text.split())
    lowered = text.lower()
    if lowered.startswith("every"):
        return _interval(text, lowered, tz, min_interval)
    if lowered.startswith("at "):
        return _at(text, tz)
    expression = ALIASES.get(lowered, text)
    if expression.startswith("@"):
        raise _bad(text, f"unknown alias; one of {', '.join(sorted(ALIASES))}")
    if len(expression.split()) != 5:
        raise _bad(text, "a cron expression has five fields: minute hour day-of-month month day-of-week")
    try:
        CronSim(expression, datetime.now(tz))
    except CronSimError as exc:
        raise _bad(text, str(exc).lower()) from None
    return Trigger("cron", text, tz, cron=expression)


def _interval(text: str, lowered: str, tz: ZoneInfo, min_interval: float) -> Trigger:
    match = _INTERVAL.match(lowered)
    if match is None:
        raise _bad(text, "an interval is 'every' and a duration such as 30s, 5m, 1h30m or 2d")
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(match.group(1)))
    if seconds < min_interval:
        raise InvalidArgument(
            f"'{text}' is under the hub's shortest interval, {min_interval:g} s", details={"field": "trigger", "min_interval_seconds": min_interval}
        )  # fmt: skip
    if seconds > 366 * 86400:
        raise _bad(text, "an interval is at most 366 days")
    return Trigger("interval", text, tz, every=timedelta(seconds=seconds))


def _at(text: str, tz: ZoneInfo) -> Trigger:
    try:
        moment = datetime.fromisoformat(text[3:].strip())
    except ValueError:
        raise _bad(text, "'at' takes an ISO 8601 date and time such as 2026-12-01T09:00") from None
    local = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
    return Trigger("at", text, tz, at=local.astimezone(timezone.utc))


def _bad(text: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"trigger '{text}': {why}", details={"field": "trigger"})


def _duration(every: timedelta) -> str:
    seconds, parts = int(every.total_seconds()), []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {unit}{'s' if count > 1 else ''}")
    return " ".join(parts)
