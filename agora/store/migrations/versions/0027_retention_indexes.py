"""retention indexes: messages by age and by expiry, deliveries by message, finished tasks, workflow runs and A2A tasks by when they finished,
so each retention batch finds the oldest without walking a table

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

revision = '0027'
down_revision = '0026'
branch_labels = None
depends_on = None

FINISHED = sa.text("finished_at IS NOT NULL")
EXPIRING = sa.text("expires_at IS NOT NULL")
A2A_FINISHED = sa.text("state IN ('completed', 'failed', 'canceled', 'rejected')")


def upgrade() -> None:
    op.create_index('ix_messages_created', 'messages', ['created_at', 'seq'])
    op.create_index('ix_inbox_seq', 'inbox', ['seq'])
    op.create_index('ix_messages_expires', 'messages', ['expires_at'], sqlite_where=EXPIRING, postgresql_where=EXPIRING)
    op.create_index('ix_tasks_finished', 'tasks', ['finished_at'], sqlite_where=FINISHED, postgresql_where=FINISHED)
    op.create_index('ix_workflows_finished', 'workflows', ['finished_at'], sqlite_where=FINISHED, postgresql_where=FINISHED)
    op.create_index('ix_a2a_tasks_finished', 'a2a_tasks', ['updated_at'], sqlite_where=A2A_FINISHED, postgresql_where=A2A_FINISHED)


def downgrade() -> None:
    op.drop_index('ix_a2a_tasks_finished', table_name='a2a_tasks')
    op.drop_index('ix_workflows_finished', table_name='workflows')
    op.drop_index('ix_tasks_finished', table_name='tasks')
    op.drop_index('ix_messages_expires', table_name='messages')
    op.drop_index('ix_inbox_seq', table_name='inbox')
    op.drop_index('ix_messages_created', table_name='messages')
