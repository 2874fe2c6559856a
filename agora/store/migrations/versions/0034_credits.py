"""metered units and prepaid credits: the unit reports of per_unit instances, the credits ledger (append-only, an
idempotency key unique per customer), each customer's balance per currency and what it chose for when credits run
out; row-level security on all four (PostgreSQL)

Revision ID: 0034
Revises: 0033
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import Json, UtcDateTime

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

_OWN = "(tenant_id = current_setting('app.tenant_id', true))"
_TABLES = ('market_unit_reports', 'billing_ledger', 'billing_balances', 'billing_settings')


def upgrade() -> None:
    op.create_table(
        'market_unit_reports',
        sa.Column('instance_id', sa.String(32), nullable=False),
        sa.Column('report_id', sa.String(200), nullable=False),
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('listing_id', sa.String(32), nullable=False),
        sa.Column('units', Json, nullable=False),
        sa.Column('charge', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('task_id', sa.String(64), nullable=True),
        sa.Column('month', sa.String(7), nullable=False),
        sa.Column('reported_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('instance_id', 'report_id'),
    )
    op.create_index('ix_market_unit_reports_tenant_month', 'market_unit_reports', ['tenant_id', 'month'])
    op.create_table(
        'billing_ledger',
        sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('kind', sa.String(16), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('idempotency_key', sa.String(200), nullable=False),
        sa.Column('source', sa.String(32), nullable=False),
        sa.Column('instance_id', sa.String(32), nullable=True),
        sa.Column('month', sa.String(7), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('expires_at', UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('entry_id'),
        sa.UniqueConstraint('tenant_id', 'idempotency_key', name='uq_billing_ledger_key'),
    )
    op.create_index('ix_billing_ledger_tenant', 'billing_ledger', ['tenant_id', 'entry_id'])
    op.create_index('ix_billing_ledger_month', 'billing_ledger', ['tenant_id', 'month', 'kind'])
    op.create_table(
        'billing_balances',
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('balance', sa.BigInteger(), nullable=False),
        sa.Column('last_paid', sa.BigInteger(), nullable=False, server_default=sa.text('0')),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'currency'),
    )
    op.create_table(
        'billing_settings',
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('when_exhausted', sa.String(16), nullable=False),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id'),
    )
    if op.get_context().dialect.name == 'postgresql':
        for table in _TABLES:
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY tenant_rows ON {table} USING {_OWN} WITH CHECK {_OWN}')


def downgrade() -> None:
    for table in reversed(_TABLES):
        op.drop_table(table)
