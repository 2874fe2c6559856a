"""budgets: each customer's monthly limit on what its instances cost, a cap per instance, alert thresholds, the
action at the limit and the month's alerts; row-level security on it (PostgreSQL)

Revision ID: 0035
Revises: 0034
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import Json, UtcDateTime

revision = '0035'
down_revision = '0034'
branch_labels = None
depends_on = None

_OWN = "(tenant_id = current_setting('app.tenant_id', true))"


def upgrade() -> None:
    op.create_table(
        'billing_budgets',
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('monthly_limit', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(3), nullable=False),
        sa.Column('instance_cap', sa.BigInteger(), nullable=True),
        sa.Column('thresholds', Json, nullable=False),
        sa.Column('action', sa.String(16), nullable=False),
        sa.Column('notify_agent', sa.String(32), nullable=True),
        sa.Column('alerts_month', sa.String(7), nullable=True),
        sa.Column('alerts', Json, nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id'),
    )
    if op.get_context().dialect.name == 'postgresql':
        op.execute('ALTER TABLE billing_budgets ENABLE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY tenant_rows ON billing_budgets USING {_OWN} WITH CHECK {_OWN}')


def downgrade() -> None:
    op.drop_table('billing_budgets')
