"""users: people with local accounts or single sign-on, their memberships (a role in a tenant), one-time sign-up links;
keys minted for a person's session (api_keys.user_id) end with it (api_keys.expires_at)

Revision ID: 0030
Revises: 0029
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

revision = '0030'
down_revision = '0029'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('user_id', sa.String(32), nullable=True))
        batch.add_column(sa.Column('expires_at', UtcDateTime(), nullable=True))
    op.create_index('ix_api_keys_user_id', 'api_keys', ['user_id'])
    op.create_table(
        'users',
        sa.Column('user_id', sa.String(32), nullable=False),
        sa.Column('email', sa.String(254), nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('issuer', sa.String(512), nullable=True),
        sa.Column('subject', sa.String(255), nullable=True),
        sa.Column('password_hash', sa.String(255), nullable=True),
        sa.Column('totp_secret', sa.String(64), nullable=True),
        sa.Column('recovery_codes', JSON, nullable=True),
        sa.Column('hub_admin', sa.Boolean(), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.Column('removed_at', UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('user_id'),
        sa.UniqueConstraint('email'),
        sa.UniqueConstraint('issuer', 'subject', name='uq_users_identity'),
    )
    op.create_table(
        'memberships',
        sa.Column('user_id', sa.String(32), sa.ForeignKey('users.user_id'), nullable=False),
        sa.Column('tenant_id', sa.String(64), sa.ForeignKey('tenants.tenant_id'), nullable=False),
        sa.Column('role', sa.String(16), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint('user_id', 'tenant_id'),
    )
    op.create_index('ix_memberships_tenant', 'memberships', ['tenant_id', 'user_id'])
    op.create_table(
        'signup_links',
        sa.Column('token_hash', sa.String(64), nullable=False),
        sa.Column('user_id', sa.String(32), sa.ForeignKey('users.user_id'), nullable=False),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.Column('used_at', UtcDateTime(), nullable=True),
        sa.Column('created_by', sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint('token_hash'),
    )
    op.create_index('ix_signup_links_user_id', 'signup_links', ['user_id'])


def downgrade() -> None:
    op.drop_table('signup_links')
    op.drop_table('memberships')
    op.drop_table('users')
    op.drop_index('ix_api_keys_user_id', table_name='api_keys')
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('expires_at')
        batch.drop_column('user_id')
