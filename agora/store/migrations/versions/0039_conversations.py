"""conversations: a row per conversation (summary, turns, first and last activity) and its agents, kept as its turns
are written; tasks.conversation_id; a conversation's messages and tasks by index; row-level security (PostgreSQL).
Conversations of messages already stored are made from them. tasks.output_seq: a task's last output chunk's number,
counted from the chunks already stored.

Revision ID: 0039
Revises: 0038
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None

_OWN = "(tenant_id = current_setting('app.tenant_id', true))"
_NAMED = sa.text('conversation_id IS NOT NULL')


def upgrade() -> None:
    op.create_table(
        'conversations',
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('conversation_id', sa.String(128), nullable=False),
        sa.Column('summary', sa.String(200), nullable=False),
        sa.Column('turns', sa.Integer(), nullable=False),
        sa.Column('started_at', UtcDateTime(), nullable=False),
        sa.Column('last_activity_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'conversation_id'),
    )
    op.create_index('ix_conversations_recent', 'conversations', ['tenant_id', 'last_activity_at', 'conversation_id'])
    op.create_index('ix_conversations_idle', 'conversations', ['last_activity_at'])
    op.create_table(
        'conversation_participants',
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('conversation_id', sa.String(128), nullable=False),
        sa.Column('agent_id', sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'conversation_id', 'agent_id'),
    )
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('conversation_id', sa.String(128), nullable=True))
        batch.add_column(sa.Column('output_seq', sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.execute(
        "UPDATE tasks SET output_seq = (SELECT coalesce(max(seq), 0) FROM task_output WHERE task_output.task_id = tasks.task_id AND kind <> 'overflow') "
        "WHERE task_id IN (SELECT task_id FROM task_output)"
    )
    op.create_index(
        'ix_tasks_conversation', 'tasks', ['tenant_id', 'conversation_id', 'created_at'], sqlite_where=_NAMED, postgresql_where=_NAMED
    )
    op.create_index(
        'ix_messages_conversation', 'messages', ['tenant_id', 'conversation_id', 'seq'], sqlite_where=_NAMED, postgresql_where=_NAMED
    )
    op.execute(
        "INSERT INTO conversations (tenant_id, conversation_id, summary, turns, started_at, last_activity_at) "
        "SELECT tenant_id, conversation_id, '', count(*), min(created_at), max(created_at) FROM messages "
        "WHERE conversation_id IS NOT NULL GROUP BY tenant_id, conversation_id"
    )
    op.execute(
        "INSERT INTO conversation_participants (tenant_id, conversation_id, agent_id) "
        "SELECT DISTINCT tenant_id, conversation_id, sender_id FROM messages WHERE conversation_id IS NOT NULL AND sender_id <> 'system' "
        "UNION SELECT DISTINCT tenant_id, conversation_id, recipient_id FROM messages WHERE conversation_id IS NOT NULL AND recipient_id IS NOT NULL"
    )
    if op.get_context().dialect.name == 'postgresql':
        for table in ('conversations', 'conversation_participants'):
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY tenant_rows ON {table} USING {_OWN} WITH CHECK {_OWN}')


def downgrade() -> None:
    op.drop_index('ix_messages_conversation', table_name='messages')
    op.drop_index('ix_tasks_conversation', table_name='tasks')
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('output_seq')
        batch.drop_column('conversation_id')
    op.drop_table('conversation_participants')
    op.drop_table('conversations')
