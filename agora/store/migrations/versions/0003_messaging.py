"""messaging: messages, inbox, read positions, subscriptions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox',
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('subscription_id', sa.String(length=32), nullable=True),
    sa.Column('visible_at', UtcDateTime(), nullable=False),
    sa.Column('delivery_count', sa.Integer(), nullable=False),
    sa.Column('acked_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('agent_id', 'seq')
    )
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_acked', ['acked_at'], unique=False)
        batch_op.create_index(
            'ix_inbox_ready',
            ['agent_id', sa.text('priority DESC'), 'seq'],
            unique=False,
            sqlite_where=sa.text('acked_at IS NULL'),
            postgresql_where=sa.text('acked_at IS NULL'),
        )

    op.create_table('messages',
    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('sender_id', sa.String(length=64), nullable=False),
    sa.Column('recipient_id', sa.String(length=32), nullable=True),
    sa.Column('topic', sa.String(length=200), nullable=True),
    sa.Column('message_type', sa.String(length=64), nullable=False),
    sa.Column('performative', sa.String(length=16), nullable=True),
    sa.Column('intent', sa.String(length=128), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('correlation', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('conversation_id', sa.String(length=128), nullable=True),
    sa.Column('expected', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('context', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('idempotency_key', sa.String(length=128), nullable=True),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.Column('expires_at', UtcDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('message_id'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_fanout', ['tenant_id', 'kind', 'seq'], unique=False)
        batch_op.create_index('uq_messages_idempotency', ['tenant_id', 'sender_id', 'idempotency_key'], unique=True, sqlite_where=sa.text('idempotency_key IS NOT NULL'), postgresql_where=sa.text('idempotency_key IS NOT NULL'))

    op.create_table('read_positions',
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('stream', sa.String(length=40), nullable=False),
    sa.Column('position', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('agent_id', 'stream')
    )
    op.create_table('subscriptions',
    sa.Column('subscription_id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.String(length=32), nullable=False),
    sa.Column('topics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('event_types', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', UtcDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('subscription_id')
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriptions_agent_id'), ['agent_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_agent_id'))

    op.drop_table('subscriptions')
    op.drop_table('read_positions')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('uq_messages_idempotency', sqlite_where=sa.text('idempotency_key IS NOT NULL'), postgresql_where=sa.text('idempotency_key IS NOT NULL'))
        batch_op.drop_index('ix_messages_fanout')

    op.drop_table('messages')
    with op.batch_alter_table('inbox', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_ready')
        batch_op.drop_index('ix_inbox_acked')

    op.drop_table('inbox')
