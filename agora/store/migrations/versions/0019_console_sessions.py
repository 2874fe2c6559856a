"""console_sessions: a person signed in to the web console, by the hash of the cookie that proves it

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'console_sessions',
        sa.Column('session_hash', sa.String(length=64), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('csrf_token', sa.String(length=64), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('session_hash'),
    )
    op.create_index('ix_console_sessions_expires', 'console_sessions', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_console_sessions_expires', table_name='console_sessions')
    op.drop_table('console_sessions')
