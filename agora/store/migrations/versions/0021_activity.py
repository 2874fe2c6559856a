"""activity: what the hub did per ten seconds, tenant and replica, for the console's overview charts

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

COUNTS = ('messages', 'tasks_created', 'tasks_done', 'tasks_failed', 'calls', 'rejected', 'failed')
LATENCY = ('lat_1', 'lat_2', 'lat_5', 'lat_10', 'lat_25', 'lat_50', 'lat_100', 'lat_250', 'lat_500', 'lat_1000', 'lat_2500', 'lat_5000', 'lat_10000', 'lat_inf')


def upgrade() -> None:
    op.create_table(
        'activity',
        sa.Column('bucket_start', UtcDateTime(), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('replica', sa.String(length=16), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS + LATENCY),
        sa.PrimaryKeyConstraint('bucket_start', 'tenant_id', 'replica'),
    )
    op.create_index('ix_activity_tenant', 'activity', ['tenant_id', 'bucket_start'])


def downgrade() -> None:
    op.drop_index('ix_activity_tenant', table_name='activity')
    op.drop_table('activity')
