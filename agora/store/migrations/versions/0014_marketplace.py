"""marketplace: listings, hosting nodes, instances, usage periods

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('hosting_nodes',
    sa.Column('node_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=False),
    sa.Column('capacity_cpu', sa.Float(), nullable=False),
    sa.Column('capacity_memory_mb', sa.Integer(), nullable=False),
    sa.Column('runtimes', JSON, nullable=False),
    sa.Column('registered_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('node_id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('market_instances',
    sa.Column('instance_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('listing_version', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.String(length=32), nullable=False),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('config', JSON, nullable=False),
    sa.Column('spec', JSON, nullable=False),
    sa.Column('pricing', JSON, nullable=False),
    sa.Column('cpu_reserved', sa.Float(), nullable=False),
    sa.Column('memory_reserved_mb', sa.Integer(), nullable=False),
    sa.Column('co_located_with', sa.String(length=32), nullable=True),
    sa.Column('pid', sa.Integer(), nullable=True),
    sa.Column('restarts', sa.Integer(), nullable=False),
    sa.Column('error_count', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_output', JSON, nullable=False),
    sa.Column('cpu_percent', sa.Float(), nullable=True),
    sa.Column('memory_mb', sa.Float(), nullable=True),
    sa.Column('processes', sa.Integer(), nullable=True),
    sa.Column('sampled_at', UtcDateTime(), nullable=True),
    sa.Column('period_state', sa.String(length=16), nullable=True),
    sa.Column('period_started_at', UtcDateTime(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('started_at', UtcDateTime(), nullable=True),
    sa.Column('stopped_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('instance_id')
    )
    with op.batch_alter_table('market_instances', schema=None) as batch_op:
        batch_op.create_index('ix_market_instances_agent', ['agent_id'], unique=False)
        batch_op.create_index('ix_market_instances_listing', ['listing_id', 'status'], unique=False)
        batch_op.create_index('ix_market_instances_node', ['node_id', 'status'], unique=False)
        batch_op.create_index('ix_market_instances_tenant', ['tenant_id', 'created_at'], unique=False)

    op.create_table('market_listings',
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('agent_name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('capabilities', JSON, nullable=False),
    sa.Column('repository', JSON, nullable=False),
    sa.Column('build_config', JSON, nullable=False),
    sa.Column('host_requirements', JSON, nullable=False),
    sa.Column('pricing', JSON, nullable=False),
    sa.Column('max_instances', sa.Integer(), nullable=False),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('updated_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('listing_id'),
    sa.UniqueConstraint('tenant_id', 'agent_name', name='uq_market_listings_name')
    )
    with op.batch_alter_table('market_listings', schema=None) as batch_op:
        batch_op.create_index('ix_market_listings_status', ['status', 'category'], unique=False)

    op.create_table('market_usage',
    sa.Column('usage_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('instance_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('listing_id', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_at', UtcDateTime(), nullable=False),
    sa.Column('ended_at', UtcDateTime(), nullable=False),
    sa.Column('micros', sa.BigInteger(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.PrimaryKeyConstraint('usage_id')
    )
    with op.batch_alter_table('market_usage', schema=None) as batch_op:
        batch_op.create_index('ix_market_usage_instance', ['instance_id', 'usage_id'], unique=False)
        batch_op.create_index('ix_market_usage_listing', ['listing_id', 'state'], unique=False)
        batch_op.create_index('ix_market_usage_tenant_month', ['tenant_id', 'month'], unique=False)

    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inbox_ready'), sqlite_where=sa.text('acked_at IS NULL'))
        batch_op.create_index('ix_inbox_ready', ['agent_id', sa.literal_column('priority DESC'), 'seq'], unique=False, sqlite_where=sa.text('acked_at IS NULL'), postgresql_where=sa.text('acked_at IS NULL'))

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_claimable'), sqlite_where=sa.text("status = 'pending'"))
        batch_op.create_index('ix_tasks_claimable', ['tenant_id', sa.literal_column('priority DESC'), 'created_at'], unique=False, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))



def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_claimable', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.create_index(batch_op.f('ix_tasks_claimable'), ['tenant_id', 'priority', 'created_at'], unique=False, sqlite_where=sa.text("status = 'pending'"))

    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_ready', sqlite_where=sa.text('acked_at IS NULL'), postgresql_where=sa.text('acked_at IS NULL'))
        batch_op.create_index(batch_op.f('ix_inbox_ready'), ['agent_id', 'priority', 'seq'], unique=False, sqlite_where=sa.text('acked_at IS NULL'))

    with op.batch_alter_table('market_usage', schema=None) as batch_op:
        batch_op.drop_index('ix_market_usage_tenant_month')
        batch_op.drop_index('ix_market_usage_listing')
        batch_op.drop_index('ix_market_usage_instance')

    op.drop_table('market_usage')
    with op.batch_alter_table('market_listings', schema=None) as batch_op:
        batch_op.drop_index('ix_market_listings_status')

    op.drop_table('market_listings')
    with op.batch_alter_table('market_instances', schema=None) as batch_op:
        batch_op.drop_index('ix_market_instances_tenant')
        batch_op.drop_index('ix_market_instances_node')
        batch_op.drop_index('ix_market_instances_listing')
        batch_op.drop_index('ix_market_instances_agent')

    op.drop_table('market_instances')
    op.drop_table('hosting_nodes')
