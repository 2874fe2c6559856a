"""import_ledger: what an import from another system (agora import v4) made of each row, kept past retention

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-26
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import UtcDateTime

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'import_ledger',
        sa.Column('tenant_id', sa.String(length=64), nullable=False),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('scope', sa.String(length=64), nullable=False),
        sa.Column('source_key', sa.String(length=128), nullable=False),
        sa.Column('target_id', sa.String(length=40), nullable=False),
        sa.Column('imported_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('tenant_id', 'source', 'scope', 'source_key'),
    )


def downgrade() -> None:
    op.drop_table('import_ledger')
