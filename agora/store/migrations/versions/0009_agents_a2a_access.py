"""agents.a2a_access: the A2A front's access, searchable (the hub's A2A directory lists public fronts)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('a2a_access', sa.String(length=8), nullable=True))
        batch_op.create_index('ix_agents_a2a_access', ['a2a_access', 'agent_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('agents', schema=None) as batch_op:
        batch_op.drop_index('ix_agents_a2a_access')
        batch_op.drop_column('a2a_access')
