"""lent_ranges: broadcasts and topic messages handed to a live stream as a range, not an inbox row each

A broadcast to 100 streaming agents wrote 100 inbox rows and updated each of them again to hide it; now each
stream's hand-out writes one range row, and only ranges that come back unacked turn into inbox rows.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'lent_ranges',
        sa.Column('agent_id', sa.String(length=32), nullable=False),
        sa.Column('stream', sa.String(length=40), nullable=False),
        sa.Column('high', sa.BigInteger(), nullable=False),
        sa.Column('low', sa.BigInteger(), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('visible_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('agent_id', 'stream', 'high'),
    )


def downgrade() -> None:
    op.drop_table('lent_ranges')
