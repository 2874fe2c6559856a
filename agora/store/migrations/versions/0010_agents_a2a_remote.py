"""agents.a2a_remote: agents that are remote A2A agents, called by the hub's bridge

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('a2a_remote', JSON, nullable=True))
        batch_op.add_column(sa.Column('a2a_token', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('a2a_card_url', sa.Text(), nullable=True))
        batch_op.create_index('ix_agents_a2a_remote', ['a2a_card_url'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index('ix_agents_a2a_remote')
        batch_op.drop_column('a2a_card_url')
        batch_op.drop_column('a2a_token')
        batch_op.drop_column('a2a_remote')
