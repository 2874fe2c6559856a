"""``agora import v4``: the v4 marketplace's export (seed 000) into a store, with new ids, idempotently.

The export is what ``spacetime export agora-marketplace --format json`` wrote: a JSON object with a list of rows per
table. Two tables are imported (the ones seed 000 migrates); any other is reported and left out::

    {"agent_capability": [{"agent_id": "DocAgent", "capability_type": "documentation", "proficiency": 80, "max_tasks": 3}],
     "agent_message":    [{"id": 17, "from_agent": "DocAgent", "to_agent": "ReviewAgent", "message_type": "review_request",
                           "content": "please review spec.md", "priority": 3, "timestamp": "2025-06-01T09:30:00Z",
                           "delivered": false}]}

- Each v4 agent (in v4 an agent's id was its name) becomes an Agora agent of that name in the tenant, with a new
  ``agent_…`` id, its capabilities, and metadata ``{"migration_source": "v4", "v4_agent_id": …, "proficiency": {…},
  "max_concurrent_tasks": …}`` (what ``agora.agents.register_capability``, the live v4 call, writes). An agent that
  only sends or receives messages is created with no capability. An agent of that name already there is kept, and
  only gains the capabilities it lacks.
- Each message keeps its sender, recipient (``broadcast``: the tenant), type, content, time and v4 priority (1 low,
  2 normal, 3 high, 4 urgent; another number is normal, as seed 000's compatibility layer maps it), gets a new
  ``msg_…`` id, and is stored as that agent sent it at that time. One that v4 had ``delivered`` is acknowledged (it is
  history, never delivered again); the others wait in their recipient's inbox. A v4 broadcast is kept as history.
- The v4 id of each row is kept in the store: an agent's in its metadata, a message's as its idempotency key
  (``v4:<id>``; a message without an id is keyed by a digest of its fields) and in the import ledger with the id it
  got, so running the import again creates nothing twice and prints the same mapping — also once the hub's retention
  job has purged the old history (v4 messages keep their v4 times, so history older than ``--message-retention`` goes
  at the next purge, as any message would).

Everything happens in one transaction, after every row was checked: bad input changes nothing, and a dry run is the
same transaction rolled back.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError, field_validator
from sqlalchemy import Connection, insert, select, update

from agora.core.events import record
from agora.core.ids import new_id
from agora.core.services.agents import register_in, stored_fields
from agora.store.ops import agents as agent_ops
from agora.store.ops import keys as key_ops
from agora.store.ops import messages as message_ops
from agora.store.schema import import_ledger, inbox, messages
from agora_sdk.errors import InvalidArgument, NotFound
from agora_sdk.wire.agents import Agent, AgentName, RegisterAgent, RegisterCapability
from agora_sdk.wire.messaging import BROADCAST, MessageType, PriorityLevel

from .copy import require_current
from .endpoints import Endpoint, StoreLocation, open_endpoint, run

IMPORTED_TABLES = ("agent_capability", "agent_message")
MIGRATION_SOURCE = "v4"
CREATED_BY = "v4-import"
MAX_ERRORS = 20  # problems listed before giving up: enough to fix a file in one go, not a flood
SEND_CHUNK = 1_000


_AGENT_NAME: TypeAdapter[str] = TypeAdapter(AgentName)


class V4Message(BaseModel):
    """One ``agent_message`` row. v4 content was a String; any JSON value is taken as it is."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: int | str | None = Field(None, validation_alias="message_id")
    from_agent: AgentName
    to_agent: str
    message_type: MessageType = "info"
    content: JsonValue = ""
    priority: int = int(PriorityLevel.normal)
    timestamp: datetime | None = None
    delivered: bool = False

    @field_validator("to_agent")
    @classmethod
    def _an_agent_or_everyone(cls, value: str) -> str:
        return value if value == BROADCAST else _AGENT_NAME.validate_python(value)

    @field_validator("timestamp", mode="before")
    @classmethod
    def _spacetime_timestamp(cls, value: Any) -> Any:
        """SpacetimeDB writes a Timestamp as {"__timestamp_micros_since_unix_epoch__": n} (older: {"microseconds": n});
        a bare integer is microseconds too; an ISO-8601 string is taken as UTC when it names no zone."""
        if isinstance(value, dict):
            value = value.get("__timestamp_micros_since_unix_epoch__", value.get("microseconds"))
        if isinstance(value, int) and not isinstance(value, bool):
            return datetime.fromtimestamp(value / 1_000_000, timezone.utc)
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @property
    def agora_priority(self) -> int:
        known = PriorityLevel.low <= self.priority <= PriorityLevel.urgent
        return self.priority if known else int(PriorityLevel.normal)


@dataclass
class V4Export:
    capabilities: list[RegisterCapability]
    messages: list[V4Message]
    ignored: dict[str, int]  # other tables of the export: rows each


def parse_export(path: Path) -> V4Export:
    """Read and check the whole export; every problem found (up to ``MAX_ERRORS``) is named in one error."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InvalidArgument(f"cannot read {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"{path} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidArgument(f"{path} is not a v4 export: expected a JSON object of tables (agent_capability, agent_message)")
    problems: dict[str, list[str]] = {}  # row → what is wrong with it
    capabilities = _rows(data, "agent_capability", RegisterCapability, problems)
    messages_ = _rows(data, "agent_message", V4Message, problems)
    if problems:
        listed = [f"{row}.{what}" for row, whats in problems.items() for what in whats]
        more = f" (and more: {len(listed) - MAX_ERRORS} not shown)" if len(listed) > MAX_ERRORS else ""
        raise InvalidArgument(
            f"{path}: {len(problems)} row(s) cannot be imported; nothing was: " + "; ".join(listed[:MAX_ERRORS]) + more,
            details={"problems": listed[:MAX_ERRORS]},
        )
    ids = Counter(str(m.id) for m in messages_ if m.id is not None)
    repeated = sorted(i for i, n in ids.items() if n > 1)
    if repeated:
        raise InvalidArgument(f"{path}: agent_message ids appear more than once: {', '.join(repeated[:10])}")
    ignored = {k: len(v) if isinstance(v, list) else 1 for k, v in data.items() if k not in IMPORTED_TABLES}
    return V4Export(capabilities, messages_, ignored)


def _rows(data: dict[str, Any], table: str, model: type[BaseModel], problems: dict[str, list[str]]) -> list[Any]:
    rows = data.get(table, [])
    if not isinstance(rows, list):
        problems[table] = ["is not a list of rows"]
        return []
    out = []
    for i, raw in enumerate(rows):
        if not isinstance(raw, dict):
            problems[f"{table}[{i}]"] = ["is not an object"]
            continue
        try:
            out.append(model.model_validate(raw))
        except ValidationError as exc:
            problems[f"{table}[{i}]"] = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
    return out


@dataclass
class AgentOutcome:
    v4_agent_id: str
    agent_id: str
    status: str  # created | updated | unchanged
    capabilities: list[str]


@dataclass
class ImportReport:
    tenant_id: str
    tenant_created: bool
    agents: list[AgentOutcome] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)  # v4 key → Agora message id
    created_messages: int = 0
    existing_messages: int = 0
    acked: int = 0
    default_priority: int = 0  # messages whose v4 priority was outside 1-4
    ignored_tables: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "tenant_id": self.tenant_id,
            "tenant_created": self.tenant_created,
            "agents": [a.__dict__ for a in self.agents],
            "messages": {
                "created": self.created_messages,
                "already_imported": self.existing_messages,
                "acknowledged": self.acked,
                "priority_defaulted": self.default_priority,
                "ids": self.messages,
            },
            "ignored_tables": self.ignored_tables,
        }


def message_key(message: V4Message, occurrence: int) -> str:
    """The idempotency key that ties an Agora message to its v4 row: its id, or (without one) a digest of its fields
    and how many identical rows came before it in the export."""
    if message.id is not None:
        return f"v4:{message.id}"
    fields = message.model_dump(mode="json", exclude={"id"})
    return f"v4:sha256:{hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]}:{occurrence}"


def _v4_agents(export: V4Export) -> dict[str, list[RegisterCapability]]:
    """Every v4 agent name, in order of appearance, with its capability rows."""
    agents_: dict[str, list[RegisterCapability]] = {}
    for cap in export.capabilities:
        agents_.setdefault(cap.agent_id, []).append(cap)
    for m in export.messages:
        for name in (m.from_agent, m.to_agent):
            if name != BROADCAST:
                agents_.setdefault(name, [])
    return agents_


def _metadata(name: str, caps: list[RegisterCapability], existing: dict[str, Any]) -> dict[str, Any]:
    metadata = {**existing, "migration_source": MIGRATION_SOURCE, "v4_agent_id": name}
    if caps:
        metadata["proficiency"] = {**existing.get("proficiency", {}), **{c.capability_type: c.proficiency for c in caps}}
        metadata["max_concurrent_tasks"] = max(c.max_tasks for c in caps)
    return metadata


def _import_agents(conn: Connection, tenant_id: str, export: V4Export, now: datetime, report: ImportReport) -> dict[str, str]:
    ids: dict[str, str] = {}
    for name, caps in _v4_agents(export).items():
        wanted = list(dict.fromkeys(c.capability_type for c in caps))
        try:
            existing = agent_ops.resolve(conn, tenant_id, name)
        except NotFound:
            existing = None
        if existing is None:
            fields = stored_fields(RegisterAgent(agent_name=name, capabilities=wanted, metadata=_metadata(name, caps, {})))
            row, _created = register_in(conn, tenant_id, fields, now, None, None, [], CREATED_BY)
            report.agents.append(AgentOutcome(name, row["agent_id"], "created", wanted))
        else:
            capabilities = list(dict.fromkeys([*existing["capabilities"], *wanted]))
            metadata = _metadata(name, caps, existing["metadata"])
            status = "unchanged"
            if capabilities != existing["capabilities"] or metadata != existing["metadata"]:
                row = agent_ops.modify(conn, existing["agent_id"], {"capabilities": capabilities, "metadata": metadata}, now)
                record(conn, tenant_id, "agent_updated", Agent.model_validate(row).model_dump(mode="json"), now)
                status = "updated"
            report.agents.append(AgentOutcome(name, existing["agent_id"], status, capabilities))
        ids[name] = report.agents[-1].agent_id
    return ids


def _message_row(message: V4Message, key: str, tenant_id: str, sender: str, recipient: str | None, now: datetime) -> dict[str, Any]:
    return {
        "message_id": new_id("msg"),
        "tenant_id": tenant_id,
        "kind": "broadcast" if message.to_agent == BROADCAST else "direct",
        "sender_id": sender,
        "recipient_id": recipient,
        "topic": None,
        "message_type": message.message_type,
        "performative": None,
        "intent": None,
        "priority": message.agora_priority,
        "content": message.content,
        "correlation": None,
        "conversation_id": None,
        "expected": None,
        "context": {"v4": {"message_id": message.id}} if message.id is not None else {"v4": {}},
        "idempotency_key": key,
        "created_at": message.timestamp or now,
        "expires_at": None,
        "reply_due_at": None,
    }


def _keyed(export: V4Export) -> list[tuple[V4Message, str]]:
    """Each message with its key, in v4's order (by time, then as exported): seqs, and so inbox order, follow it."""
    seen: Counter[str] = Counter()
    keyed = []
    for m in export.messages:
        key = message_key(m, 0)
        if m.id is None:
            seen[key] += 1
            key = message_key(m, seen[key] - 1)
        keyed.append((m, key))
    never = datetime.max.replace(tzinfo=timezone.utc)  # no time: after the timed ones, as exported
    order = sorted(range(len(keyed)), key=lambda i: (keyed[i][0].timestamp or never, i))
    return [keyed[i] for i in order]


def _imported_before(conn: Connection, tenant_id: str, keys: list[str]) -> dict[tuple[str, str], str]:
    """The messages of these keys an earlier import made in the tenant, from its ledger (the messages themselves may
    be purged since): (sender, key) → message id. (A key is the sender's: another agent's message with the same key
    is another message.)"""
    ledger = import_ledger.c
    found: dict[tuple[str, str], str] = {}
    for start in range(0, len(keys), SEND_CHUNK):
        rows = conn.execute(
            select(ledger.scope, ledger.source_key, ledger.target_id).where(
                ledger.tenant_id == tenant_id, ledger.source == MIGRATION_SOURCE, ledger.source_key.in_(keys[start : start + SEND_CHUNK])
            )
        )
        found.update(((sender, key), message_id) for sender, key, message_id in rows)
    return found


def _record(conn: Connection, tenant_id: str, made: list[dict[str, Any]], now: datetime) -> None:
    """Write what this import made of each message (sender, key, id) into the ledger."""
    rows = [{"tenant_id": tenant_id, "source": MIGRATION_SOURCE, "imported_at": now, **row} for row in made]
    for start in range(0, len(rows), SEND_CHUNK):
        conn.execute(insert(import_ledger), rows[start : start + SEND_CHUNK])


def _import_messages(conn: Connection, tenant_id: str, export: V4Export, agent_ids: dict[str, str], now: datetime, report: ImportReport) -> None:
    delivered: list[str] = []
    made: list[dict[str, Any]] = []  # ledger rows
    batch: list[tuple[V4Message, dict[str, Any]]] = []
    keyed = _keyed(export)
    earlier = _imported_before(conn, tenant_id, [key for _, key in keyed])

    def send() -> None:
        """One sender's consecutive messages (message_ops.send takes one sender)."""
        rows = [row for _, row in batch]
        for (m, row), receipt in zip(batch, message_ops.send(conn, tenant_id, rows[0]["sender_id"], rows, now)):
            report.messages[row["idempotency_key"]] = receipt["message_id"]
            made.append({"scope": row["sender_id"], "source_key": row["idempotency_key"], "target_id": receipt["message_id"]})
            if receipt["status"] == "queued":
                report.created_messages += 1
                if m.delivered and row["kind"] == "direct":
                    delivered.append(receipt["message_id"])
            else:
                report.existing_messages += 1
        batch.clear()

    for m, key in keyed:
        report.default_priority += m.agora_priority != m.priority
        sender = agent_ids[m.from_agent]
        if (sender, key) in earlier:
            report.messages[key] = earlier[sender, key]
            report.existing_messages += 1
            continue
        if batch and (batch[0][1]["sender_id"] != sender or len(batch) >= SEND_CHUNK):
            send()
        recipient = None if m.to_agent == BROADCAST else agent_ids[m.to_agent]
        batch.append((m, _message_row(m, key, tenant_id, sender, recipient, now)))
    if batch:
        send()
    _record(conn, tenant_id, made, now)
    report.acked = _acknowledge(conn, delivered)


def _acknowledge(conn: Connection, message_ids: list[str]) -> int:
    """Mark the deliveries of messages v4 had delivered as acked when they were sent: history, not work. (A direct
    message has one delivery, the row of its seq.)"""
    done = 0
    for start in range(0, len(message_ids), SEND_CHUNK):
        seqs = select(messages.c.seq).where(messages.c.message_id.in_(message_ids[start : start + SEND_CHUNK]))
        sent = select(messages.c.created_at).where(messages.c.seq == inbox.c.seq).scalar_subquery()
        done += conn.execute(update(inbox).where(inbox.c.seq.in_(seqs)).values(acked_at=sent, delivery_count=1)).rowcount
    return done


def _tenant(conn: Connection, ref: str, now: datetime) -> tuple[str, bool]:
    tenant = key_ops.resolve_tenant(conn, ref)
    if tenant is not None:
        return str(tenant["tenant_id"]), False
    return str(key_ops.create_tenant(conn, ref, now)["tenant_id"]), True


def import_into(endpoint: Endpoint, export: V4Export, tenant: str, dry_run: bool) -> ImportReport:
    """The import in the endpoint's transaction, committed unless ``dry_run``."""
    if endpoint.revision() is None:
        endpoint.upgrade()  # a new store: as a hub's first start would make it
    require_current(endpoint)
    now = datetime.now(timezone.utc)
    tenant_id, created = _tenant(endpoint.conn, tenant, now)
    report = ImportReport(tenant_id, created, ignored_tables=export.ignored, dry_run=dry_run)
    agent_ids = _import_agents(endpoint.conn, tenant_id, export, now, report)
    _import_messages(endpoint.conn, tenant_id, export, agent_ids, now, report)
    if dry_run:
        endpoint.conn.rollback()
    else:
        endpoint.conn.commit()
    return report


async def import_v4(path: Path, location: StoreLocation, *, tenant: str = "default", dry_run: bool = False) -> ImportReport:
    """``agora import v4``: check the export, then import it in one transaction (see the module's docstring)."""
    export = parse_export(path)
    async with open_endpoint(location) as endpoint:
        return await run(import_into, endpoint, export, tenant, dry_run)
