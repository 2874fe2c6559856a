"""Building blocks shared by every wire model: strict inputs, lenient outputs, UTC times."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Iterator

from pydantic import AfterValidator, AliasChoices, BaseModel, ConfigDict, Field, WithJsonSchema

# Ids are ``{prefix}_{24 hex}`` (8 of the second they were made, 16 random); ids made before that change have 16 hex.
ID_HEX = r"(?:[0-9a-f]{24}|[0-9a-f]{16})"


def id_pattern(prefix: str) -> str:
    """The pattern of an id with ``prefix`` (``task`` → ``task_…``), in either form."""
    return rf"^{prefix}_{ID_HEX}$"


# Any JSON value, carried as sent. The schema names every JSON type instead of being empty, which MCP clients
# flag as "accepts any value" and which tells an LLM nothing.
JSON_VALUE_SCHEMA: dict[str, Any] = {"type": ["string", "number", "boolean", "object", "array", "null"]}
JSONValue = Annotated[Any, WithJsonSchema(JSON_VALUE_SCHEMA)]
JSONObject = Annotated[dict[str, Any], WithJsonSchema({"type": "object", "additionalProperties": JSON_VALUE_SCHEMA})]


def iso_utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _as_utc(value: datetime) -> datetime:
    """Times are held in UTC: aware ones are converted, naive ones are taken as UTC."""
    if value.tzinfo is timezone.utc:
        return value
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# Every time on the wire is ISO-8601 UTC with a trailing "Z": converted when validated, pydantic writes UTC times with
# the "Z" itself (a serializer function instead took half of a task's serialization time).
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

# Secrets are write-only: stored and used by the hub, never read back. A read shows a secret's name with this value.
SECRET_MASK = "********"
INT32_MAX = 2**31 - 1  # the largest value a PostgreSQL integer column holds: an input stored or compared there stays under it


def mask_values(values: dict[str, str]) -> dict[str, str]:
    """The names, each with ``SECRET_MASK`` for its value."""
    return dict.fromkeys(values, SECRET_MASK)


_URL_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


def redact_url(url: str) -> str:
    """``url`` with the credentials it may carry (``https://user:token@host/…``) replaced by ``SECRET_MASK``."""
    return _URL_CREDENTIALS.sub(rf"\g<1>{SECRET_MASK}@", url)


MaskedEnv = Annotated[
    dict[str, str],
    AfterValidator(mask_values),
    Field(default_factory=dict, description=f"Write-only: the variables' names, each read back as '{SECRET_MASK}'."),
]
RedactedUrl = Annotated[str, AfterValidator(redact_url)]

# Text the hub sends as an HTTP header value (a token, a credential): visible ASCII, words apart by single spaces.
# Anything else would fail later, in the HTTP library, with an error that quotes it.
HEADER_TEXT = r"^[\x21-\x7e]+( [\x21-\x7e]+)*$"
HeaderText = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=HEADER_TEXT, description="Visible ASCII; words apart by single spaces.")
]

Cursor = Annotated[str, Field(max_length=512, description="Opaque cursor from a previous page's next_cursor.")]
Limit = Annotated[int, Field(ge=1, le=500, description="Maximum number of items to return.")]


class Input(BaseModel):
    """A tool's input: unknown fields are an error, so typos never pass silently.

    ``positional_args`` names the fields the SDK's method takes in order, as the seed's examples call them
    (``client.messaging.send("DocWriter", "hi")``); every other field is a keyword.
    """

    model_config = ConfigDict(extra="forbid")
    positional_args: ClassVar[tuple[str, ...]] = ()


def acting_agent(description: str) -> Any:
    """An optional agent field that defaults to the caller; ``agent_id`` is accepted too, as seed 000 spells it."""
    return Field(None, min_length=1, max_length=128, validation_alias=AliasChoices("agent", "agent_id"), description=description)


class Output(BaseModel):
    """A tool's output: clients ignore fields they do not know, so the hub can add fields."""

    model_config = ConfigDict(extra="ignore")


class Listing(Output):
    """An output that is mainly a list: ``len()``, iteration and indexing go over its ``items_field``."""

    items_field: ClassVar[str]

    def __len__(self) -> int:
        return len(getattr(self, self.items_field))

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return iter(getattr(self, self.items_field))

    def __getitem__(self, index: int) -> Any:
        return getattr(self, self.items_field)[index]


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
    unavailable = "unavailable"  # an imported tool whose MCP server is down


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
