"""tasks.retry_backoff_seconds: a task's own retry backoff (workflow steps set it from their retry policy)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('retry_backoff_seconds', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('retry_backoff_seconds')
