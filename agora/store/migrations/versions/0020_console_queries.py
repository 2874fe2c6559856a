"""Indexes for the web console's queries: messages searched newest first, the dead letter requeued oldest first

A tenant's messages, and those of one sender, one recipient or one topic, each walked newest first from a cursor
(agora.messaging.search). Recipients and topics are partial: only direct messages have a recipient and only topic
messages a topic, and every lookup names one. The dead letter holds few tasks: its index holds only them.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

# (index, table, columns, WHERE)
INDEXES = [
    ('ix_messages_tenant_seq', 'messages', ['tenant_id', 'seq'], None),
    ('ix_messages_sender', 'messages', ['tenant_id', 'sender_id', 'seq'], None),
    ('ix_messages_recipient', 'messages', ['tenant_id', 'recipient_id', 'seq'], "recipient_id IS NOT NULL"),
    ('ix_messages_topic', 'messages', ['tenant_id', 'topic', 'seq'], "topic IS NOT NULL"),
    ('ix_tasks_dead_letter', 'tasks', ['tenant_id', 'created_at', 'task_id'], "status = 'dead_letter'"),
]


def upgrade() -> None:
    for name, table, columns, where in INDEXES:
        partial = {} if where is None else {'sqlite_where': sa.text(where), 'postgresql_where': sa.text(where)}
        op.create_index(name, table, columns, **partial)


def downgrade() -> None:
    for name, table, _columns, _where in reversed(INDEXES):
        op.drop_index(name, table_name=table)
