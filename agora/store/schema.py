"""The one schema of the hub, for SQLite and PostgreSQL alike (migrations live in ``migrations/``)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from .types import Json, UtcDateTime

metadata = MetaData()

# Autoincrementing 64-bit key that SQLite accepts as its rowid alias.
Serial = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", UtcDateTime, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("tenant_id", String(64), ForeignKey("tenants.tenant_id"), nullable=True),
    Column("agent_id", String(32), nullable=True, index=True),
    Column("scopes", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Column("role", String(16), nullable=True),  # the role whose scopes it carries (core/auth.ROLE_SCOPES), if limited to one
    Column("user_id", String(32), nullable=True, index=True),  # the person it acts for (a console session's key)
    Column("expires_at", UtcDateTime, nullable=True),  # a session's key ends with its session
    Index("ix_api_keys_tenant", "tenant_id", "key_id"),
)

# People (core/accounts.py): a user signs in with a local account (email and an argon2id password hash, an optional
# TOTP second factor) or through the identity provider (issuer, subject). A membership gives a user a role in a tenant.
# A signed-in user acts through a key minted for the session (api_keys.user_id, limited to the membership's role), so
# every door checks a person exactly as it checks a key, and removing the user revokes those keys on every replica.
users = Table(
    "users",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),  # lower-cased
    Column("name", String(200), nullable=False, default=""),
    Column("issuer", String(512), nullable=True),
    Column("subject", String(255), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("totp_secret", String(64), nullable=True),  # set once confirmed with a code
    Column("recovery_codes", Json, nullable=True),  # SHA-256 of the unused recovery codes
    Column("hub_admin", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("removed_at", UtcDateTime, nullable=True),
    UniqueConstraint("issuer", "subject", name="uq_users_identity"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("user_id", String(32), ForeignKey("users.user_id"), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.tenant_id"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("created_by", String(64), nullable=False),
    Index("ix_memberships_tenant", "tenant_id", "user_id"),
)

# One-time sign-up links: only the token's SHA-256 is kept; taking one sets its used_at (single use) before expiry.
signup_links = Table(
    "signup_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.user_id"), nullable=False, index=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("used_at", UtcDateTime, nullable=True),
    Column("created_by", String(64), nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.tenant_id"), nullable=False),
    Column("agent_name", String(128), nullable=False),
    Column("service_tier", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("capabilities", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("manifest", Json, nullable=True),
    Column("a2a", Json, nullable=True),  # the agent's A2A front (access, skills); NULL: not reachable over A2A
    Column("a2a_access", String(8), nullable=True),  # a2a's access (private/public), to search on
    Column("a2a_remote", Json, nullable=True),  # a remote A2A agent the hub calls for this one: card_url, card, fetched_at
    Column("a2a_card_url", Text, nullable=True),  # that agent's card URL (SQL NULL for any other agent), to find them
    Column("a2a_token", Text, nullable=True),  # the bearer token for that remote agent (never returned)
    Column("search_text", Text, nullable=False, default=""),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("last_heartbeat", UtcDateTime, nullable=True),
    UniqueConstraint("tenant_id", "agent_name", name="uq_agents_tenant_name"),
    Index("ix_agents_tenant_status", "tenant_id", "status"),
    Index("ix_agents_tenant_id", "tenant_id", "agent_id"),  # a tenant's agents in id (page) order
    Index("ix_agents_a2a_access", "a2a_access", "agent_id"),  # the hub's A2A directory: public fronts
    Index("ix_agents_a2a_remote", "a2a_card_url"),  # the bridge's remote agents
    Index("ix_agents_name", "agent_name"),  # a name looked up across tenants (an A2A front's path, the admin)
)

agent_capabilities = Table(
    "agent_capabilities",
    metadata,
    Column("agent_id", String(32), ForeignKey("agents.agent_id", ondelete="CASCADE"), primary_key=True),
    Column("capability", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Index("ix_agent_capabilities_tenant_cap", "tenant_id", "capability", "agent_id"),
    Index("ix_agent_capabilities_cap", "capability", "agent_id"),
)

services = Table(
    "services",
    metadata,
    Column("service_id", String(32), primary_key=True),
    Column("service_name", String(128), nullable=False, unique=True),
    Column("version", String(32), nullable=False),
    Column("category", String(64), nullable=False, index=True),
    Column("description", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("deprecation_date", Date, nullable=True),
    Column("sunset_date", Date, nullable=True),
    Column("replacement", String(160), nullable=True),
    Column("schema", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("tenant_id", String(64), nullable=True),
    Column("reason", Text, nullable=False),
    Column("authority", Integer, nullable=False),
    Column("details", Json, nullable=False),
    Index("ix_audit_log_tenant_seq", "tenant_id", "seq"),
    sqlite_autoincrement=True,  # a sequence number is never reused, even after the newest row is deleted
)

# Hub-wide switches that must survive restarts and be shared by replicas (e.g. an emergency halt).
system_state = Table(
    "system_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Json, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# External MCP servers the gateway connects to. Names are hub-wide (tools become ext.<name>.<tool>); tenant_id
# NULL means every tenant sees it. ``secrets`` (headers, bearer token, stdio env) is never returned by a tool.
mcp_servers = Table(
    "mcp_servers",
    metadata,
    Column("server_id", String(32), primary_key=True),
    Column("name", String(48), nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=True),
    Column("transport", String(8), nullable=False),
    Column("url", Text, nullable=True),
    Column("command", Text, nullable=True),
    Column("args", Json, nullable=False),
    Column("secrets", Json, nullable=False),
    Column("timeout_seconds", Float, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Every accepted message, stored once whatever its audience: one agent, the whole tenant, or a topic.
messages = Table(
    "messages",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("message_id", String(32), nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # direct | broadcast | topic
    Column("sender_id", String(64), nullable=False),  # an agent id, or "system"
    Column("recipient_id", String(32), nullable=True),
    Column("topic", String(200), nullable=True),
    Column("message_type", String(64), nullable=False),
    Column("performative", String(16), nullable=True),
    Column("intent", String(128), nullable=True),
    Column("priority", Integer, nullable=False),
    Column("content", Json, nullable=False),
    Column("correlation", Json, nullable=True),
    Column("conversation_id", String(128), nullable=True),
    Column("expected", Json, nullable=True),
    Column("context", Json, nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),
    # Set while the sender waits for a reply (expected.timeout_ms); cleared by the reply or by the timeout failure.
    Column("reply_due_at", UtcDateTime, nullable=True),
    Index("ix_messages_fanout", "tenant_id", "kind", "seq"),
    # Searches (agora.messaging.search), newest first: a tenant's messages, and those of one sender, recipient, topic.
    Index("ix_messages_tenant_seq", "tenant_id", "seq"),
    Index("ix_messages_sender", "tenant_id", "sender_id", "seq"),
    Index(
        "ix_messages_recipient",
        "tenant_id",
        "recipient_id",
        "seq",
        sqlite_where=text("recipient_id IS NOT NULL"),
        postgresql_where=text("recipient_id IS NOT NULL"),
    ),
    Index(  # a conversation's messages, in order (agora.conversations.get, migration 0039)
        "ix_messages_conversation",
        "tenant_id",
        "conversation_id",
        "seq",
        sqlite_where=text("conversation_id IS NOT NULL"),
        postgresql_where=text("conversation_id IS NOT NULL"),
    ),
    Index(
        "ix_messages_topic",
        "tenant_id",
        "topic",
        "seq",
        sqlite_where=text("topic IS NOT NULL"),
        postgresql_where=text("topic IS NOT NULL"),
    ),
    # Retention (migration 0027): messages by age, walked a window at a time; those with an expiry, by it.
    Index("ix_messages_created", "created_at", "seq"),
    Index(
        "ix_messages_expires",
        "expires_at",
        sqlite_where=text("expires_at IS NOT NULL"),
        postgresql_where=text("expires_at IS NOT NULL"),
    ),
    Index(
        "ix_messages_reply_due",
        "reply_due_at",
        sqlite_where=text("reply_due_at IS NOT NULL"),
        postgresql_where=text("reply_due_at IS NOT NULL"),
    ),
    Index(
        "uq_messages_idempotency",
        "tenant_id",
        "sender_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
    sqlite_autoincrement=True,  # read positions are seqs: one must never be handed out twice
)

# Delivery state of a message for one agent: created on send (direct) or when the agent's cursor
# reaches a broadcast or topic message; removed by retention after the ack.
inbox = Table(
    "inbox",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("subscription_id", String(32), nullable=True),
    Column("visible_at", UtcDateTime, nullable=False),
    Column("delivery_count", Integer, nullable=False),
    Column("acked_at", UtcDateTime, nullable=True),
    Index(
        "ix_inbox_ready",
        "agent_id",
        text("priority DESC"),
        "seq",
        sqlite_where=text("acked_at IS NULL"),
        postgresql_where=text("acked_at IS NULL"),
    ),
    Index("ix_inbox_seq", "seq"),  # a message's deliveries (retention keeps a message while one is pending)
    Index(  # retention: acked before a cutoff (an unacked delivery has no entry to write)
        "ix_inbox_acked",
        "acked_at",
        sqlite_where=text("acked_at IS NOT NULL"),
        postgresql_where=text("acked_at IS NOT NULL"),
    ),
    # Live streams hand out in seq order: without this they walk every acked row of the agent first.
    Index(
        "ix_inbox_pending_seq",
        "agent_id",
        "seq",
        sqlite_where=text("acked_at IS NULL"),
        postgresql_where=text("acked_at IS NULL"),
    ),
)

# How far an agent has read a shared stream: "broadcast", or one of its topic subscriptions.
read_positions = Table(
    "read_positions",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("stream", String(40), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Broadcast and topic messages a live stream handed out straight from the shared stream, past the read position:
# a range (low, high] per hand-out rather than an inbox row per message. Acks shrink it, cut it or drop it; at
# visible_at (or when a stream resumes before it) it turns into inbox rows.
lent_ranges = Table(
    "lent_ranges",
    metadata,
    Column("agent_id", String(32), primary_key=True),
    Column("stream", String(40), primary_key=True),
    Column("high", BigInteger, primary_key=True),
    Column("low", BigInteger, nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("visible_at", UtcDateTime, nullable=False),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("agent_id", String(32), nullable=False, index=True),
    Column("topics", Json, nullable=False),
    Column("event_types", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Hub events (agent_registered, agent_status_changed, task_*, …), written in the transaction of the change they
# describe, so live streams replay them after a reconnect. ``visible_to`` null: every principal of the tenant may see
# it; otherwise only that agent (and the tenant's customers and admins).
events = Table(
    "events",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=True),
    Column("type", String(64), nullable=False),
    Column("visible_to", String(32), nullable=True),
    Column("data", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_events_tenant_seq", "tenant_id", "seq"),
    Index("ix_events_created", "created_at"),
    sqlite_autoincrement=True,  # stream positions are seqs: one must never be handed out twice
    # On PostgreSQL partitioned by day, its primary key (seq, created_at) (migration 0028, store/partitions.py).
    postgresql_partition_by="RANGE (created_at)",
)

# The task queue. A task is claimable when pending, available (backoff passed), its dependencies are done, and the
# claimer is its assignee or has every required capability. A claim sets a lease (token, fencing counter, expiry).
tasks = Table(
    "tasks",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("task_type", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("assignee", String(128), nullable=True),  # agent id, or the name of an agent that may register later
    Column("required_capabilities", Json, nullable=False),
    Column("preferred_agent_id", String(32), nullable=True),
    Column("claimed_by", String(32), nullable=True),
    Column("payload", Json, nullable=False),
    Column("result", Json, nullable=True),
    Column("progress", Integer, nullable=False),
    Column("notes", Text, nullable=True),
    Column("priority", Integer, nullable=False),
    Column("deadline", UtcDateTime, nullable=True),
    Column("max_attempts", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("retry_backoff_seconds", Float, nullable=True),  # the first retry's backoff; null: the hub's default
    Column("depends_on", Json, nullable=False),
    Column("run_if_dependency_fails", Boolean, nullable=False),
    # Some task depends on this one: its end may make work claimable (otherwise parked claimers are not woken).
    Column("has_dependents", Boolean, nullable=False, default=False, server_default=text("false")),
    Column("workflow_id", String(64), nullable=True),
    Column("conversation_id", String(128), nullable=True),  # the conversation it is a turn of (an A2A contextId)
    # Its last output chunk's number (within the bound): emits count on from it under the row's lock.
    Column("output_seq", Integer, nullable=False, default=0, server_default=text("0")),
    Column("idempotency_key", String(128), nullable=True),
    Column("lease_token", String(40), nullable=True),
    Column("fencing_token", BigInteger, nullable=False),
    Column("lease_expires_at", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("available_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
    Index(
        "ix_tasks_claimable",
        "tenant_id",
        text("priority DESC"),
        "created_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index("ix_tasks_tenant_status", "tenant_id", "status", "task_type"),
    # Partial on NOT NULL (migration 0017): every lookup names a value, and a NULL entry cost each write.
    Index(
        "ix_tasks_assignee",
        "assignee",
        "status",
        sqlite_where=text("assignee IS NOT NULL"),
        postgresql_where=text("assignee IS NOT NULL"),
    ),
    Index(
        "ix_tasks_preferred",
        "preferred_agent_id",
        sqlite_where=text("status = 'pending' AND preferred_agent_id IS NOT NULL"),
        postgresql_where=text("status = 'pending' AND preferred_agent_id IS NOT NULL"),
    ),
    Index(
        "ix_tasks_claimed_by",
        "claimed_by",
        "status",
        sqlite_where=text("claimed_by IS NOT NULL"),
        postgresql_where=text("claimed_by IS NOT NULL"),
    ),
    Index(  # retention: finished tasks, oldest first (migration 0027)
        "ix_tasks_finished",
        "finished_at",
        sqlite_where=text("finished_at IS NOT NULL"),
        postgresql_where=text("finished_at IS NOT NULL"),
    ),
    Index(  # the recent durations an assign estimates its completion from
        "ix_tasks_recent_completions",
        "tenant_id",
        "task_type",
        "finished_at",
        sqlite_where=text("status = 'completed'"),
        postgresql_where=text("status = 'completed'"),
    ),
    Index(
        "ix_tasks_leases",
        "lease_expires_at",
        sqlite_where=text("status = 'in_progress'"),
        postgresql_where=text("status = 'in_progress'"),
    ),
    Index(
        "ix_tasks_deadline",
        "deadline",
        sqlite_where=text("deadline IS NOT NULL AND status IN ('pending', 'in_progress')"),
        postgresql_where=text("deadline IS NOT NULL AND status IN ('pending', 'in_progress')"),
    ),
    Index(  # a conversation's tasks, in order (agora.conversations.get, migration 0039)
        "ix_tasks_conversation",
        "tenant_id",
        "conversation_id",
        "created_at",
        sqlite_where=text("conversation_id IS NOT NULL"),
        postgresql_where=text("conversation_id IS NOT NULL"),
    ),
    Index(  # the dead letter, oldest first (agora.task.requeue_dead_letter)
        "ix_tasks_dead_letter",
        "tenant_id",
        "created_at",
        "task_id",
        sqlite_where=text("status = 'dead_letter'"),
        postgresql_where=text("status = 'dead_letter'"),
    ),
    Index(
        "uq_tasks_idempotency",
        "tenant_id",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
        postgresql_where=text("idempotency_key IS NOT NULL"),
    ),
)

# A task's required capabilities, one row each, so "the claimer has them all" is a NOT EXISTS on both engines.
task_requirements = Table(
    "task_requirements",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("capability", String(64), primary_key=True),
)

task_dependencies = Table(
    "task_dependencies",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("depends_on_id", String(32), primary_key=True),
    Index("ix_task_dependencies_upstream", "depends_on_id"),
)

# Every transition of every task, with who made it.
task_history = Table(
    "task_history",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("task_id", String(32), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_task_history_task", "task_id", "seq"),
)

# A2A tasks of agents' A2A fronts. Each turn of the conversation (the first message, then each follow-up the task
# asked for) is an Agora task of type ``a2a.message`` for the agent, ``turn_task_id`` the current one; the A2A state,
# history and artifacts live here, in the A2A JSON shapes.
a2a_tasks = Table(
    "a2a_tasks",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("agent_id", String(32), nullable=False),
    Column("caller", String(128), nullable=False),  # who sent the first message: only they list and read it
    Column("context_id", String(128), nullable=False),
    Column("state", String(24), nullable=False),
    Column("status_message", Json, nullable=True),
    Column("history", Json, nullable=False),
    Column("artifacts", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("message_only", Boolean, nullable=False),  # the agent answered with a Message: no task was shown
    Column("turn_task_id", String(32), nullable=False, index=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_a2a_tasks_listing", "agent_id", "caller", "updated_at", "task_id"),
    Index("ix_a2a_tasks_context", "agent_id", "context_id"),
    Index(  # retention: finished A2A tasks, oldest first (migration 0027)
        "ix_a2a_tasks_finished",
        "updated_at",
        sqlite_where=text("state IN ('completed', 'failed', 'canceled', 'rejected')"),
        postgresql_where=text("state IN ('completed', 'failed', 'canceled', 'rejected')"),
    ),
)

# Every A2A stream event of every A2A task, in order: what SendStreamingMessage and SubscribeToTask send.
a2a_events = Table(
    "a2a_events",
    metadata,
    Column("seq", Serial, primary_key=True, autoincrement=True),
    Column("task_id", String(32), nullable=False),
    Column("body", Json, nullable=False),  # an A2A 1.0 StreamResponse, JSON form
    Column("final", Boolean, nullable=False),  # the task reached a terminal or interrupted state with this event
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_a2a_events_task", "task_id", "seq"),
    sqlite_autoincrement=True,
)

# Push-notification configs of A2A tasks: each is a webhook that gets every event of its task, in order, at least
# once. ``delivered_seq`` is the last event it acknowledged; a deliverer claims a config (``claimed_until``) while
# it posts, so replicas do not post the same events at once.
a2a_push_configs = Table(
    "a2a_push_configs",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("config_id", String(128), primary_key=True),
    Column("url", Text, nullable=False),
    Column("token", Text, nullable=True),
    Column("auth_scheme", String(64), nullable=True),
    Column("auth_credentials", Text, nullable=True),
    Column("delivered_seq", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("claimed_until", UtcDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_a2a_push_configs_due", "next_attempt_at"),
)

# Workflows: durable DAGs whose steps run as tasks. The engine moves them along in the transaction of each task
# transition (and of create, signal, cancel), so a crash at any point leaves a consistent state to resume from.
workflows = Table(
    "workflows",
    metadata,
    Column("workflow_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("workflow_name", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("failure_policy", String(16), nullable=False),
    Column("input", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("assigned_agents", Json, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_workflows_tenant_created", "tenant_id", "created_at", "workflow_id"),
    Index(  # retention: finished runs, oldest first (migration 0027)
        "ix_workflows_finished",
        "finished_at",
        sqlite_where=text("finished_at IS NOT NULL"),
        postgresql_where=text("finished_at IS NOT NULL"),
    ),
)

workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column("workflow_id", String(32), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("spec", Json, nullable=False),  # the step as given: agent, capabilities, task_type, input, when, retry…
    Column("depends_on", Json, nullable=False),
    Column("state", String(16), nullable=False),
    Column("agent_id", String(32), nullable=True),
    Column("task_ids", Json, nullable=False),
    Column("item_results", Json, nullable=False),  # for_each: each item's result, in item order
    Column("result", Json, nullable=True),
    Column("error", Text, nullable=True),
    Column("started_at", UtcDateTime, nullable=True),
    Column("finished_at", UtcDateTime, nullable=True),
)

# Which step (and for_each item) each dispatched task belongs to.
workflow_step_tasks = Table(
    "workflow_step_tasks",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("workflow_id", String(32), nullable=False),
    Column("step", String(64), nullable=False),
    Column("item", Integer, nullable=True),
    Index("ix_workflow_step_tasks_workflow", "workflow_id"),
)

# Saved workflow definitions: written once (each define of a name is its next version), run many times.
workflow_definitions = Table(
    "workflow_definitions",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("workflow_name", String(200), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("description", Text, nullable=False),
    Column("steps", Json, nullable=False),
    Column("failure_policy", String(16), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# The marketplace: listings (one row per listing, its current version), hosting nodes, customer instances, and the
# append-only usage periods they are billed from.
market_listings = Table(
    "market_listings",
    metadata,
    Column("listing_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),  # the publisher
    Column("agent_name", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # listed, unlisted
    Column("description", Text, nullable=False),
    Column("category", String(64), nullable=False),
    Column("capabilities", Json, nullable=False),
    Column("repository", Json, nullable=False),
    Column("build_config", Json, nullable=False),
    Column("host_requirements", Json, nullable=False),
    Column("pricing", Json, nullable=False),
    Column("max_instances", Integer, nullable=False),
    Column("languages", Json, nullable=True),  # ISO 639-1 codes the listed agent works in (NULL: not said)
    Column("search_text", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Its published reviews' ratings (agora_sdk/wire/reviews.py): the Bayesian rating, how many, their sum and count
    # per star (1 to 5). Kept with each review written, edited, withdrawn or hidden.
    Column("rating", Float, nullable=False, server_default=text("3")),
    Column("rating_count", Integer, nullable=False, server_default=text("0")),
    Column("rating_total", Integer, nullable=False, server_default=text("0")),
    Column("rating_distribution", Json, nullable=False, server_default=text("'[0, 0, 0, 0, 0]'")),
    # Its reputation (0 to 100) and what it was reckoned from, kept by a periodic job (core/reputation.py); the
    # default is that of a listing nobody ran or rated yet (core/reputation.PRIOR).
    Column("reputation", Float, nullable=False, server_default=text("70.75")),
    Column("reputation_inputs", Json, nullable=True),
    UniqueConstraint("tenant_id", "agent_name", name="uq_market_listings_name"),
    Index("ix_market_listings_status", "status", "category"),
    Index("ix_market_listings_rating", "status", "rating", "listing_id"),  # best rated first
    Index("ix_market_listings_reputation", "status", "reputation", "listing_id"),
    Index("ix_market_listings_category_rating", "status", "category", "rating", "listing_id"),  # within a category
    Index("ix_market_listings_category_reputation", "status", "category", "reputation", "listing_id"),
)

# Reviews of listings by verified buyers: one per tenant and listing, edited in place (earlier versions in
# market_review_history), withdrawn by its author or hidden by the hub's administrator, never deleted.
market_reviews = Table(
    "market_reviews",
    metadata,
    Column("review_id", String(32), primary_key=True),
    Column("listing_id", String(32), nullable=False),
    Column("tenant_id", String(64), nullable=False),  # the reviewer
    Column("author", String(200), nullable=False),  # who wrote it (Principal.label)
    Column("rating", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("listing_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # published, withdrawn, hidden
    Column("hidden_reason", Text, nullable=True),
    Column("response", Text, nullable=True),  # the publisher's answer
    Column("responded_at", UtcDateTime, nullable=True),
    Column("edits", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("listing_id", "tenant_id", name="uq_market_reviews_tenant"),
    Index("ix_market_reviews_listing", "listing_id", "status", "updated_at", "review_id"),
    Index("ix_market_reviews_tenant", "tenant_id", "created_at"),  # a tenant's recent reviews (the burst limit)
)

market_review_history = Table(
    "market_review_history",
    metadata,
    Column("entry_id", Serial, primary_key=True, autoincrement=True),
    Column("review_id", String(32), nullable=False, index=True),
    Column("rating", Integer, nullable=False),
    Column("title", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("listing_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("replaced_at", UtcDateTime, nullable=False),
)

hosting_nodes = Table(
    "hosting_nodes",
    metadata,
    Column("node_id", String(32), primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False),  # whose key registered it: its agent lives there
    Column("agent_id", String(32), nullable=False),
    Column("region", String(64), nullable=False),
    Column("capacity_cpu", Float, nullable=False),
    Column("capacity_memory_mb", Integer, nullable=False),
    Column("runtimes", Json, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

market_instances = Table(
    "market_instances",
    metadata,
    Column("instance_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),  # the customer
    Column("listing_id", String(32), nullable=False),
    Column("listing_version", Integer, nullable=False),
    Column("node_id", String(32), nullable=False),
    Column("agent_id", String(32), nullable=False),  # the instance's agent, in the customer's tenant
    Column("status", String(16), nullable=False),
    Column("config", Json, nullable=False),  # as the customer gave it: memory_limit, cpu_limit, env
    Column("spec", Json, nullable=False),  # what the node runs: listing name and version, repository, build_config, limits
    Column("pricing", Json, nullable=False),  # as agreed at creation
    Column("cpu_reserved", Float, nullable=False),
    Column("memory_reserved_mb", Integer, nullable=False),
    Column("co_located_with", String(32), nullable=True),  # the instance it was placed beside
    Column("pid", Integer, nullable=True),
    Column("restarts", Integer, nullable=False),
    Column("error_count", Integer, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("last_output", Json, nullable=False),
    Column("cpu_percent", Float, nullable=True),
    Column("memory_mb", Float, nullable=True),
    Column("processes", Integer, nullable=True),
    Column("sampled_at", UtcDateTime, nullable=True),
    Column("period_state", String(16), nullable=True),  # the open usage period: running, paused, down; NULL: none
    Column("period_started_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime, nullable=True),
    Column("stopped_at", UtcDateTime, nullable=True),
    Index("ix_market_instances_tenant", "tenant_id", "created_at"),
    Index("ix_market_instances_node", "node_id", "status"),
    Index("ix_market_instances_listing", "listing_id", "status"),
    Index("ix_market_instances_agent", "agent_id"),
)

# Closed usage periods: never updated. Billed time is the sum of 'running' periods; requests are the tasks the
# instance completed within each period. A period never spans two months, so an invoice is a sum of whole rows.
market_usage = Table(
    "market_usage",
    metadata,
    Column("usage_id", Serial, primary_key=True, autoincrement=True),
    Column("instance_id", String(32), nullable=False),
    Column("tenant_id", String(64), nullable=False),
    Column("listing_id", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime, nullable=False),
    Column("micros", BigInteger, nullable=False),
    Column("requests", Integer, nullable=False),
    Column("month", String(7), nullable=False),
    Index("ix_market_usage_instance", "instance_id", "usage_id"),
    Index("ix_market_usage_tenant_month", "tenant_id", "month"),
    Index("ix_market_usage_listing", "listing_id", "state"),
)

# Unit reports of per_unit instances (agora.billing.report_usage): one row per (instance, report id), never updated;
# its charge is priced when it is accepted, so the invoice and the credits ledger add up the same amounts.
market_unit_reports = Table(
    "market_unit_reports",
    metadata,
    Column("instance_id", String(32), primary_key=True),
    Column("report_id", String(200), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("listing_id", String(32), nullable=False),
    Column("units", Json, nullable=False),
    Column("charge", BigInteger, nullable=False),  # millionths of the currency (core/billing.MILLIONTHS)
    Column("currency", String(3), nullable=False),
    Column("task_id", String(64), nullable=True),
    Column("month", String(7), nullable=False),
    Column("reported_at", UtcDateTime, nullable=False),
    Index("ix_market_unit_reports_tenant_month", "tenant_id", "month"),
)

# Prepaid credits: an append-only ledger per customer (grants, refunds, debits), each row's idempotency key unique for
# its customer; amounts are signed millionths of the currency. billing_balances keeps each balance (the ledger's sum,
# kept in the same transaction as each row); billing_settings what the customer chose.
billing_ledger = Table(
    "billing_ledger",
    metadata,
    Column("entry_id", Serial, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("kind", String(16), nullable=False),  # grant, refund, debit, expiry
    Column("amount", BigInteger, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("source", String(32), nullable=False),  # admin, webhook:stripe, units, usage, expiry
    Column("instance_id", String(32), nullable=True),
    Column("month", String(7), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=True),  # a grant's: what is left of it then expires (an expiry row)
    UniqueConstraint("tenant_id", "idempotency_key", name="uq_billing_ledger_key"),
    Index("ix_billing_ledger_tenant", "tenant_id", "entry_id"),
    Index("ix_billing_ledger_month", "tenant_id", "month", "kind"),
)

billing_balances = Table(
    "billing_balances",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("balance", BigInteger, nullable=False),
    Column("last_paid", BigInteger, nullable=False, server_default=text("0")),  # what the latest debit took (see charge)
    Column("updated_at", UtcDateTime, nullable=False),
)

billing_settings = Table(
    "billing_settings",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("when_exhausted", String(16), nullable=False),  # invoice, pause
    Column("updated_at", UtcDateTime, nullable=False),
)

# Budgets: a customer's monthly limit (millionths of its currency), an optional cap per instance, the thresholds
# (percent) that raise alerts, what happens at the limit, and the alerts raised in ``alerts_month`` (``version`` moves
# with each change, so that of two replicas raising the same alert one does).
billing_budgets = Table(
    "billing_budgets",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("monthly_limit", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("instance_cap", BigInteger, nullable=True),
    Column("thresholds", Json, nullable=False),
    Column("action", String(16), nullable=False),  # pause, refuse_new, notify
    Column("notify_agent", String(32), nullable=True),
    Column("alerts_month", String(7), nullable=True),
    Column("alerts", Json, nullable=False),  # [{"threshold", "at", "spent"}] of alerts_month
    Column("version", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# What a running task emits (``agora.task.emit``), in order: text or JSON chunks, ``seq`` from 1. A task keeps at most
# ``--task-output-chunks``; past that one ``overflow`` row (seq = the bound + 1) counts what was not kept.
task_output = Table(
    "task_output",
    metadata,
    Column("task_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(8), nullable=False),  # text, data, overflow
    Column("text", Text, nullable=True),
    Column("data", Json, nullable=True),  # a data chunk's value; an overflow's {"chunks": n, "bytes": n}
    Column("created_at", UtcDateTime, nullable=False),
)

# Conversations (agora.conversations.*): the messages and tasks of a tenant sharing a ``conversation_id`` (an A2A
# turn's is its contextId). A row per conversation, kept as its turns are written (store/ops/conversations.touch), so
# a tenant's conversations are listed by last activity without reading their turns; its agents in a row each.
conversations = Table(
    "conversations",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("conversation_id", String(128), primary_key=True),
    Column("summary", String(200), nullable=False),  # the first turn's words
    Column("turns", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("last_activity_at", UtcDateTime, nullable=False),
    Index("ix_conversations_recent", "tenant_id", "last_activity_at", "conversation_id"),
    Index("ix_conversations_idle", "last_activity_at"),  # retention
)

conversation_participants = Table(
    "conversation_participants",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("conversation_id", String(128), primary_key=True),
    Column("agent_id", String(32), primary_key=True),
)

# Schedules (core/schedules): work the hub starts on a clock. ``next_fire_at`` (the next tick plus its jitter) is what
# the scheduler reads, by index: idle schedules cost nothing between ticks. A schedule acts as the key that made it
# (``owner_key_hash``) or the person who made it (``owner_user_id``), checked again at each tick.
schedules = Table(
    "schedules",
    metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=True),
    Column("trigger", String(200), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("anchor_at", UtcDateTime, nullable=False),  # where an interval counts from
    Column("action", Json, nullable=False),  # wire.schedules.Action
    Column("overlap", String(8), nullable=False),
    Column("missed", String(8), nullable=False),
    Column("catch_up_max", Integer, nullable=False),
    Column("jitter_seconds", Float, nullable=False),
    Column("start_at", UtcDateTime, nullable=True),
    Column("end_at", UtcDateTime, nullable=True),
    Column("max_runs", Integer, nullable=True),
    Column("status", String(8), nullable=False),  # active, paused, ended, stopped
    Column("status_reason", Text, nullable=True),
    Column("runs", Integer, nullable=False),
    Column("next_tick_at", UtcDateTime, nullable=True),  # the next tick the clock gives (none: ended)
    Column("next_fire_at", UtcDateTime, nullable=True),  # next_tick_at plus its jitter; null unless active
    Column("queued_tick_at", UtcDateTime, nullable=True),  # overlap 'queue': the tick waiting for the run before
    Column("last_run_kind", String(8), nullable=True),
    Column("last_run_id", String(64), nullable=True),
    Column("owner_key_hash", String(64), nullable=True),  # the key it acts as (null: a person's, or the bootstrap key)
    Column("owner_user_id", String(32), nullable=True),  # the person it acts for, with their role in the tenant now
    Column("created_by", String(160), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_schedules_tenant_name"),
    Index("ix_schedules_due", "next_fire_at"),
    Index("ix_schedules_queued", "queued_tick_at"),
    Index("ix_schedules_owner", "owner_key_hash"),
    Index("ix_schedules_name", "name"),  # an administrator's lookup by name, across tenants
)

# One row per tick of a schedule: the key that makes each tick fire once, on any number of replicas, and its history.
schedule_ticks = Table(
    "schedule_ticks",
    metadata,
    Column("schedule_id", String(32), primary_key=True),
    Column("tick_at", UtcDateTime, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("outcome", String(8), nullable=False),  # fired, skipped, queued, missed, refused
    Column("reason", Text, nullable=True),
    Column("manual", Boolean, nullable=False),
    Column("fired_at", UtcDateTime, nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("run_kind", String(8), nullable=True),
    Column("run_id", String(64), nullable=True),
    Index("ix_schedule_ticks_recorded", "recorded_at"),  # retention
)

# Web console sign-ins. The cookie holds a random token; only its SHA-256 is stored, with the hash of the key it was
# exchanged for (so revoking that key ends its sessions) and the session's CSRF token. Expired rows are purged.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("key_hash", String(64), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("id_token", Text, nullable=True),  # a single sign-on's ID token: the provider's logout is asked with it
    Index("ix_console_sessions_expires", "expires_at"),
)

# Single sign-on requests under way (core/oidc.py): one row per redirect to the identity provider, taken (deleted) by
# the callback, so a state is used once and on any replica. ``browser_hash`` is the SHA-256 of a cookie set on the
# browser that started it: a callback from another browser (a stolen or planted code) is refused.
sso_requests = Table(
    "sso_requests",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("browser_hash", String(64), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("verifier", String(128), nullable=False),
    Column("next", String(512), nullable=False),
    Column("expires_at", UtcDateTime, nullable=False, index=True),
)

# OAuth 2.0 for MCP clients (agora/core/oauth.py): the hub is its own authorization server, and the person approving
# a client pastes an API key. Clients register themselves (RFC 7591). A grant is an authorization request waiting for
# that approval, then its one-time code; tokens are stored as SHA-256 only, with the hash of the key they stand for,
# so revoking the key ends them. An access token and its refresh token share a ``pair_id``: revoking one ends both.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("info", Json, nullable=False),  # the client's registration as answered to it (RFC 7591 3.2.1)
    Column("created_at", UtcDateTime, nullable=False),
)
oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("request_hash", String(64), primary_key=True),  # of the consent page's request token
    Column("client_id", String(64), nullable=False),
    Column("params", Json, nullable=False),  # redirect_uri, code_challenge, scopes, state, resource
    Column("key_hash", String(64), nullable=True),  # set when approved
    Column("code_hash", String(64), nullable=True, unique=True),  # set when approved; taken by the token exchange
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_oauth_grants_expires", "expires_at"),
)
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("kind", String(8), nullable=False),  # access | refresh
    Column("pair_id", String(32), nullable=False, index=True),
    Column("client_id", String(64), nullable=False),
    Column("key_hash", String(64), nullable=False, index=True),
    Column("scopes", Json, nullable=True),  # null: whatever the key may do
    Column("resource", String(512), nullable=True),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_oauth_tokens_expires", "expires_at"),
)

# What the hub did per ten seconds, tenant and replica (agora.query.activity): counts, and calls per latency bound
# (lat_<ms>: at most that many ms, over the one before; lat_inf: slower), which sum across rows.
LATENCY_COLUMNS = ("lat_1", "lat_2", "lat_5", "lat_10", "lat_25", "lat_50", "lat_100", "lat_250", "lat_500", "lat_1000", "lat_2500", "lat_5000", "lat_10000", "lat_inf")
activity = Table(
    "activity",
    metadata,
    Column("bucket_start", UtcDateTime, primary_key=True),
    Column("tenant_id", String(64), primary_key=True),
    Column("replica", String(16), primary_key=True),
    Column("messages", Integer, nullable=False),
    Column("tasks_created", Integer, nullable=False),
    Column("tasks_done", Integer, nullable=False),
    Column("tasks_failed", Integer, nullable=False),
    Column("calls", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("failed", Integer, nullable=False),
    *(Column(name, Integer, nullable=False) for name in LATENCY_COLUMNS),
    Index("ix_activity_tenant", "tenant_id", "bucket_start"),
)

# Made by migration 0023 beside the metadata, for the engines' own full text: SQLite's FTS5 table search_fts (with
# the shadow tables FTS5 keeps, search_fts_*) and its vocabulary search_vocab; PostgreSQL's generated tsv column of
# search_documents and its GIN index. Schema comparisons and store copies leave them out: the engine keeps them.
FULL_TEXT_TABLES = ("search_fts", "search_vocab")  # and every table whose name starts with one of these
FULL_TEXT_COLUMNS = {("search_documents", "tsv")}
FULL_TEXT_INDEXES = {"ix_search_documents_tsv"}

# The search index: one document per agent, marketplace listing and catalog tool, written in the transaction that
# changes its source. Full text is the engine's own (SQLite: the FTS5 table ``search_fts`` over these rows, kept by
# triggers; PostgreSQL: the generated ``tsv`` column and its GIN index), both made by migration 0023 and absent from
# this metadata. ``embedding`` (float32, little-endian) is filled after the write by the hub's embedder, for the text
# whose hash is ``embedded_hash``; a document whose ``text_hash`` differs waits for a new one.
search_documents = Table(
    "search_documents",
    metadata,
    Column("doc_seq", Serial, primary_key=True, autoincrement=True),  # FTS5's rowid: must never change
    Column("kind", String(16), nullable=False),  # agent, listing, service
    Column("ref_id", String(160), nullable=False),  # agent_id, listing_id, service_name
    Column("tenant_id", String(64), nullable=True),  # owner (agent's tenant, publisher); NULL: the hub's own
    Column("public", Boolean, nullable=False),  # seen by every tenant (a listed listing, a catalog tool)
    Column("title", Text, nullable=False),
    Column("tags", Text, nullable=False),  # capabilities, category, the name's parts
    Column("body", Text, nullable=False),
    Column("category", String(64), nullable=True),
    Column("price", Float, nullable=True),  # per pricing_model's unit (per request for hybrid); NULL: not priced
    Column("pricing_model", String(16), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("region", String(64), nullable=True),
    Column("languages", Text, nullable=False),  # space-separated ISO 639-1 codes
    Column("updated_at", UtcDateTime, nullable=False),
    Column("text_hash", String(32), nullable=False),
    Column("embedding", LargeBinary, nullable=True),
    Column("embedder", String(160), nullable=True),
    Column("embedded_hash", String(32), nullable=True),
    Column("embedded_at", UtcDateTime, nullable=True),
    UniqueConstraint("kind", "ref_id", name="uq_search_documents_ref"),
    Index("ix_search_documents_tenant", "tenant_id", "kind"),
    Index("ix_search_documents_public", "public", "kind"),
    Index("ix_search_documents_unembedded", "embedded_hash"),  # the embedder's queue: embedded_hash IS NULL
    Index("ix_search_documents_embedded_at", "embedded_at"),  # whether any vector was stored since a replica looked
)

# Marketplace chat conversations (agora.marketplace.chat, agora/chat/memory.py): a tenant's recent turns, the last
# result list and the entry the conversation is about, so "start the second one" and "tell me more about it" mean
# something. Bounded in size by the chat, and forgotten after ``expires_at``.
chat_conversations = Table(
    "chat_conversations",
    metadata,
    Column("conversation_id", String(40), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("started_by", String(160), nullable=False),  # the principal's label
    Column("memory", Json, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_chat_conversations_expires", "expires_at"),
)

# What an import from another system (``agora import v4``) made of each of its rows: the row's key in that system →
# the id it got here. Re-running an import looks here, so it creates nothing twice even after the retention job has
# purged what it made (v4 history is old on arrival). One row per imported row; nothing purges it.
import_ledger = Table(
    "import_ledger",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("source", String(16), primary_key=True),  # v4
    Column("scope", String(64), primary_key=True),  # whose key it is: a message's sender
    Column("source_key", String(128), primary_key=True),  # the message's idempotency key, v4:<id>
    Column("target_id", String(40), nullable=False),
    Column("imported_at", UtcDateTime, nullable=False),
)
