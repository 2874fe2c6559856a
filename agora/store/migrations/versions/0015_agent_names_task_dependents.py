"""agents.agent_name index; tasks.has_dependents

Every A2A call addressed by name (/a2a/agents/{name}) resolves the agent without a tenant; the unique
(tenant_id, agent_name) index cannot serve that, so each call scanned the agents table.
A finished task woke every parked claimer of its tenant in case a dependent became claimable; has_dependents
says whether any can (existing dependencies are marked here).
ix_tasks_claimable again, with priority DESC: SQLite's batch migrations (0014) rebuilt it ascending, so a claim
(ORDER BY priority DESC, created_at) sorted every pending task of the top priority instead of reading the first.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_agents_name', 'agents', ['agent_name'])
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('has_dependents', sa.Boolean(), nullable=False, server_default=sa.text('false')))
    op.execute("UPDATE tasks SET has_dependents = true WHERE task_id IN (SELECT depends_on_id FROM task_dependencies)")
    _claimable_index()


def _claimable_index() -> None:
    """Outside any batch: a batch rebuild on SQLite re-creates indexes by reflection, which drops the DESC."""
    op.drop_index('ix_tasks_claimable', table_name='tasks')
    op.create_index(
        'ix_tasks_claimable', 'tasks', ['tenant_id', sa.text('priority DESC'), 'created_at'],
        sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('has_dependents')
    _claimable_index()
    op.drop_index('ix_agents_name', table_name='agents')
