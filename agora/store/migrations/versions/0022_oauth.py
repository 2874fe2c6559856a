"""oauth: clients, grants and tokens of the hub's own OAuth authorization server (MCP clients sign in with a key)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'oauth_clients',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('info', JSON, nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('client_id'),
    )
    op.create_table(
        'oauth_grants',
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('params', JSON, nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=True),
        sa.Column('code_hash', sa.String(length=64), nullable=True),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('request_hash'),
        sa.UniqueConstraint('code_hash'),
    )
    op.create_index('ix_oauth_grants_expires', 'oauth_grants', ['expires_at'])
    op.create_table(
        'oauth_tokens',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('pair_id', sa.String(length=32), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('scopes', JSON, nullable=True),
        sa.Column('resource', sa.String(length=512), nullable=True),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_oauth_tokens_pair_id', 'oauth_tokens', ['pair_id'])
    op.create_index('ix_oauth_tokens_key_hash', 'oauth_tokens', ['key_hash'])
    op.create_index('ix_oauth_tokens_expires', 'oauth_tokens', ['expires_at'])


def downgrade() -> None:
    op.drop_table('oauth_tokens')
    op.drop_table('oauth_grants')
    op.drop_table('oauth_clients')
