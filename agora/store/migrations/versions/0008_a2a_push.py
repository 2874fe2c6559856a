"""a2a push: webhooks that get an A2A task's events

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('a2a_push_configs',
    sa.Column('task_id', sa.String(length=32), nullable=False),
    sa.Column('config_id', sa.String(length=128), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('token', sa.Text(), nullable=True),
    sa.Column('auth_scheme', sa.String(length=64), nullable=True),
    sa.Column('auth_credentials', sa.Text(), nullable=True),
    sa.Column('delivered_seq', sa.BigInteger(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UtcDateTime(), nullable=False),
    sa.Column('claimed_until', UtcDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('task_id', 'config_id')
    )
    with op.batch_alter_table('a2a_push_configs', schema=None) as batch_op:
        batch_op.create_index('ix_a2a_push_configs_due', ['next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_table('a2a_push_configs')
