"""agora.query.activity: what the hub did over time (the console's overview charts)."""

from __future__ import annotations

from pydantic import Field

from .common import Input, Output, UtcDatetime


class ActivityRequest(Input):
    minutes: int = Field(60, ge=5, le=10080, description="How far back to look: 5 minutes to 7 days.")
    tenant: str | None = Field(
        None, min_length=1, max_length=128, description="One tenant, by id or name (the admin sees all tenants' otherwise)."
    )


class ActivityPoint(Output):
    at: UtcDatetime = Field(description="Start of the interval.")
    messages: int = Field(description="Messages stored.")
    tasks_created: int
    tasks_done: int = Field(description="Tasks completed.")
    tasks_failed: int = Field(description="Tasks failed or dead-lettered.")
    calls: int = Field(description="Tool calls answered (every door).")
    rejected: int = Field(description="Calls answered with a 4xx error.")
    failed: int = Field(description="Calls answered with a 5xx error.")
    p50_ms: float | None = Field(description="Median call latency (upper bound of its latency class), None without calls.")
    p95_ms: float | None


class Activity(Output):
    since: UtcDatetime
    until: UtcDatetime
    step_seconds: int = Field(description="Length of each point's interval.")
    points: list[ActivityPoint]
