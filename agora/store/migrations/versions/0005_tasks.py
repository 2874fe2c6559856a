"""tasks; an inbox index for live streams

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('task_dependencies',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('depends_on_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('task_id', 'depends_on_id')
    )
    with op.batch_alter_table('task_dependencies', schema=None) as batch_op:
        batch_op.create_index('ix_task_dependencies_upstream', ['depends_on_id'], unique=False)

    op.create_table('task_history',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('at', UtcDateTime(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('task_history', schema=None) as batch_op:
        batch_op.create_index('ix_task_history_task', ['task_id', 'seq'], unique=False)

    op.create_table('task_requirements',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('capability', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('task_id', 'capability')
    )
    op.create_table('tasks',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('task_type', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('assignee', sa.String(length=128), nullable=True),
    sa.Column('required_capabilities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('preferred_agent_id', sa.String(length=32), nullable=True),
    sa.Column('claimed_by', sa.String(length=32), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('deadline', UtcDateTime(), nullable=True),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('depends_on', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('run_if_dependency_fails', sa.Boolean(), nullable=False),
    sa.Column('workflow_id', sa.String(length=64), nullable=True),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('lease_token', sa.String(length=40), nullable=True),
    sa.Column('fencing_token', sa.BigInteger(), nullable=False),
    sa.Column('lease_expires_at', UtcDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.Column('available_at', UtcDateTime(), nullable=False),
    sa.Column('started_at', UtcDateTime(), nullable=True),
    sa.Column('finished_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('task_id')
    )
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.create_index('ix_tasks_assignee', ['assignee', 'status'], unique=False)
        batch_op.create_index('ix_tasks_claimed_by', ['claimed_by', 'status'], unique=False)
        batch_op.create_index(
            'ix_tasks_preferred', ['preferred_agent_id'], unique=False,
            sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"),
        )
        batch_op.create_index('ix_tasks_deadline', ['deadline'], unique=False, sqlite_where=sa.text("deadline IS NOT NULL AND status IN ('pending', 'in_progress')"), postgresql_where=sa.text("deadline IS NOT NULL AND status IN ('pending', 'in_progress')"))
        batch_op.create_index('ix_tasks_leases', ['lease_expires_at'], unique=False, sqlite_where=sa.text("status = 'in_progress'"), postgresql_where=sa.text("status = 'in_progress'"))
        batch_op.create_index('ix_tasks_tenant_status', ['tenant_id', 'status', 'task_type'], unique=False)
        batch_op.create_index('uq_tasks_idempotency', ['tenant_id', 'idempotency_key'], unique=True, sqlite_where=sa.text('idempotency_key IS NOT NULL'), postgresql_where=sa.text('idempotency_key IS NOT NULL'))

        batch_op.create_index(
            'ix_tasks_claimable', ['tenant_id', sa.text('priority DESC'), 'created_at'], unique=False,
            sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"),
        )


    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index(
            'ix_inbox_pending_seq', ['agent_id', 'seq'], unique=False,
            sqlite_where=sa.text('acked_at IS NULL'), postgresql_where=sa.text('acked_at IS NULL'),
        )


def downgrade() -> None:
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_pending_seq')
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_claimable')
        batch_op.drop_index('uq_tasks_idempotency', sqlite_where=sa.text('idempotency_key IS NOT NULL'), postgresql_where=sa.text('idempotency_key IS NOT NULL'))
        batch_op.drop_index('ix_tasks_tenant_status')
        batch_op.drop_index('ix_tasks_leases', sqlite_where=sa.text("status = 'in_progress'"), postgresql_where=sa.text("status = 'in_progress'"))
        batch_op.drop_index('ix_tasks_deadline', sqlite_where=sa.text("deadline IS NOT NULL AND status IN ('pending', 'in_progress')"), postgresql_where=sa.text("deadline IS NOT NULL AND status IN ('pending', 'in_progress')"))
        batch_op.drop_index('ix_tasks_claimed_by')
        batch_op.drop_index('ix_tasks_preferred')
        batch_op.drop_index('ix_tasks_assignee')

    op.drop_table('tasks')
    op.drop_table('task_requirements')
    with op.batch_alter_table('task_history', schema=None) as batch_op:
        batch_op.drop_index('ix_task_history_task')

    op.drop_table('task_history')
    with op.batch_alter_table('task_dependencies', schema=None) as batch_op:
        batch_op.drop_index('ix_task_dependencies_upstream')

    op.drop_table('task_dependencies')
