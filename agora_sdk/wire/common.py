"""Building blocks shared by every wire model: strict inputs, lenient outputs, UTC times."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

JSONObject = dict[str, Any]


def iso_utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


# Every time on the wire is ISO-8601 UTC with a trailing "Z".
UtcDatetime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str, when_used="json")]

Cursor = Annotated[str, Field(max_length=512, description="Opaque cursor from a previous page's next_cursor.")]
Limit = Annotated[int, Field(ge=1, le=500, description="Maximum number of items to return.")]


class Input(BaseModel):
    """A tool's input: unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    """A tool's output: clients ignore fields they do not know, so the hub can add fields."""

    model_config = ConfigDict(extra="ignore")


class Empty(Input):
    """A tool that takes no arguments."""


class ServiceTier(StrEnum):
    basic = "basic"
    premium = "premium"
    enterprise = "enterprise"


class ToolStatus(StrEnum):
    active = "active"
    beta = "beta"
    deprecated = "deprecated"


class AgentStatus(StrEnum):
    """Presence states an agent reports, plus the two an administrator imposes."""

    active = "active"
    busy = "busy"
    error = "error"
    inactive = "inactive"
    offline = "offline"
    paused = "paused"
    terminated = "terminated"


# The states an agent may report about itself with a heartbeat or update.
SELF_REPORTED_STATUSES = (AgentStatus.active, AgentStatus.busy, AgentStatus.error, AgentStatus.inactive)
