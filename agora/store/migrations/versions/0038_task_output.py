"""task_output: what a running task emits, in order (text or JSON chunks), bounded per task with an overflow row;
row-level security on it (PostgreSQL)

Revision ID: 0038
Revises: 0037
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import Json, UtcDateTime

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None

_OWN = "(tenant_id = current_setting('app.tenant_id', true))"


def upgrade() -> None:
    op.create_table(
        'task_output',
        sa.Column('task_id', sa.String(32), nullable=False),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('kind', sa.String(8), nullable=False),
        sa.Column('text', sa.Text(), nullable=True),
        sa.Column('data', Json, nullable=True),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('task_id', 'seq'),
    )
    if op.get_context().dialect.name == 'postgresql':
        op.execute('ALTER TABLE task_output ENABLE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY tenant_rows ON task_output USING {_OWN} WITH CHECK {_OWN}')


def downgrade() -> None:
    op.drop_table('task_output')
