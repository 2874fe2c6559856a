"""chat_conversations: the marketplace chat's conversations (recent turns, the last results, the entry it is about)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'chat_conversations',
        sa.Column('conversation_id', sa.String(length=40), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('started_by', sa.String(length=160), nullable=False),
        sa.Column('memory', JSON, nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.Column('expires_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('conversation_id'),
    )
    op.create_index('ix_chat_conversations_expires', 'chat_conversations', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_chat_conversations_expires', table_name='chat_conversations')
    op.drop_table('chat_conversations')
