"""single sign-on: requests under way to the identity provider (state, nonce, PKCE verifier, bound to the browser),
and the ID token a console session keeps for the provider's logout

Revision ID: 0031
Revises: 0030
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('console_sessions') as batch:
        batch.add_column(sa.Column('id_token', sa.Text(), nullable=True))
    op.create_table(
        'sso_requests',
        sa.Column('state_hash', sa.String(64), nullable=False),
        sa.Column('browser_hash', sa.String(64), nullable=False),
        sa.Column('nonce', sa.String(64), nullable=False),
        sa.Column('verifier', sa.String(128), nullable=False),
        sa.Column('next', sa.String(512), nullable=False),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('state_hash'),
    )
    op.create_index('ix_sso_requests_expires_at', 'sso_requests', ['expires_at'])


def downgrade() -> None:
    op.drop_table('sso_requests')
    with op.batch_alter_table('console_sessions') as batch:
        batch.drop_column('id_token')
