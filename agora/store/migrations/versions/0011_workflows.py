"""workflows: DAGs of steps run as tasks

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('workflows',
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('workflow_name', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('failure_policy', sa.String(length=16), nullable=False),
    sa.Column('input', JSON, nullable=False),
    sa.Column('metadata', JSON, nullable=False),
    sa.Column('assigned_agents', JSON, nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.Column('finished_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('workflow_id')
    )
    with op.batch_alter_table('workflows', schema=None) as batch_op:
        batch_op.create_index('ix_workflows_tenant_created', ['tenant_id', 'created_at', 'workflow_id'], unique=False)

    op.create_table('workflow_steps',
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('spec', JSON, nullable=False),
    sa.Column('depends_on', JSON, nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('agent_id', sa.String(length=32), nullable=True),
    sa.Column('task_ids', JSON, nullable=False),
    sa.Column('item_results', JSON, nullable=False),
    sa.Column('result', JSON, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', UtcDateTime(), nullable=True),
    sa.Column('finished_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('workflow_id', 'name')
    )

    op.create_table('workflow_step_tasks',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('workflow_id', sa.String(length=32), nullable=False),
    sa.Column('step', sa.String(length=64), nullable=False),
    sa.Column('item', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('task_id')
    )
    with op.batch_alter_table('workflow_step_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_workflow_step_tasks_workflow', ['workflow_id'], unique=False)


def downgrade() -> None:
    op.drop_table('workflow_step_tasks')
    op.drop_table('workflow_steps')
    op.drop_table('workflows')
