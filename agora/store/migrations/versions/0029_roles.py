"""roles: a key may be limited to a role (api_keys.role), and the scopes that roles tell apart are split out

Taking deliveries (receive, ack, subscribe) gets ``messaging:receive``; creating instances ``instances:write`` and
running, pausing and terminating them ``instances:control``; invoices and usage ``billing:read``; budgets and credits
``billing:write``. Every stored key and OAuth access token keeps what it could do: the scope it had implies the new
ones (statements only, so ``agora db upgrade --sql`` prints them).

Revision ID: 0029
Revises: 0028
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

from agora.store.migration_sql import add_scope

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None

IMPLIED = {
    'messaging:read': ['messaging:receive'],
    'marketplace:write': ['instances:write', 'instances:control', 'billing:write'],
    'marketplace:read': ['billing:read'],
}


def upgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.add_column(sa.Column('role', sa.String(16), nullable=True))
    for table in ('api_keys', 'oauth_tokens'):
        for had, new_scopes in IMPLIED.items():
            for new in new_scopes:
                op.execute(add_scope(op.get_context().dialect.name, table, had, new))


def downgrade() -> None:
    with op.batch_alter_table('api_keys') as batch:
        batch.drop_column('role')
