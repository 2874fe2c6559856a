"""a2a: agents' A2A fronts, A2A tasks and their events

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('a2a_events',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('body', JSON, nullable=False),
    sa.Column('final', sa.Boolean(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('a2a_events', schema=None) as batch_op:
        batch_op.create_index('ix_a2a_events_task', ['task_id', 'seq'], unique=False)

    op.create_table('a2a_tasks',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('caller', sa.String(length=128), nullable=False),
    sa.Column('context_id', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('status_message', JSON, nullable=True),
    sa.Column('history', JSON, nullable=False),
    sa.Column('artifacts', JSON, nullable=False),
    sa.Column('metadata', JSON, nullable=False),
    sa.Column('message_only', sa.Boolean(), nullable=False),
    sa.Column('turn_task_id', sa.String(length=32), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('task_id')
    )
    with op.batch_alter_table('a2a_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_a2a_tasks_context', ['agent_id', 'context_id'], unique=False)
        batch_op.create_index('ix_a2a_tasks_listing', ['agent_id', 'caller', 'updated_at', 'task_id'], unique=False)
        batch_op.create_index('ix_a2a_tasks_turn_task_id', ['turn_task_id'], unique=False)

    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('a2a', JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_column('a2a')
    op.drop_table('a2a_tasks')
    op.drop_table('a2a_events')
