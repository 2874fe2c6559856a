"""mcp_servers: external MCP servers of the gateway

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mcp_servers',
    sa.Column('server_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=48), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=True),
    sa.Column('transport', sa.String(length=8), nullable=False),
    sa.Column('url', sa.Text(), nullable=True),
    sa.Column('command', sa.Text(), nullable=True),
    sa.Column('args', JSON, nullable=False),
    sa.Column('secrets', JSON, nullable=False),
    sa.Column('timeout_seconds', sa.Float(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('server_id'),
    sa.UniqueConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('mcp_servers')
