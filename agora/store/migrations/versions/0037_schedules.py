"""schedules: work the hub starts on a clock, and one row per tick (the key that makes each fire once); row-level
security on both (PostgreSQL); the schedules scopes for every key that reads or writes tasks

Revision ID: 0037
Revises: 0036
Create Date: 2026-11-29
"""
import sqlalchemy as sa
from alembic import op

from agora.store.migration_sql import add_scope
from agora.store.types import Json, UtcDateTime

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None

_OWN = "(tenant_id = current_setting('app.tenant_id', true))"
# A key (or OAuth token) that could read or write tasks may read or write schedules (which make tasks): those made
# before this have the new scopes added, so that no one's rights shrink with the upgrade.
_NEW_SCOPES = {'tasks:read': 'schedules:read', 'tasks:write': 'schedules:write'}


def upgrade() -> None:
    op.create_table(
        'schedules',
        sa.Column('schedule_id', sa.String(32), nullable=False),
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('name', sa.String(128), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('trigger', sa.String(200), nullable=False),
        sa.Column('timezone', sa.String(64), nullable=False),
        sa.Column('anchor_at', UtcDateTime(), nullable=False),
        sa.Column('action', Json, nullable=False),
        sa.Column('overlap', sa.String(8), nullable=False),
        sa.Column('missed', sa.String(8), nullable=False),
        sa.Column('catch_up_max', sa.Integer(), nullable=False),
        sa.Column('jitter_seconds', sa.Float(), nullable=False),
        sa.Column('start_at', UtcDateTime(), nullable=True),
        sa.Column('end_at', UtcDateTime(), nullable=True),
        sa.Column('max_runs', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(8), nullable=False),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('runs', sa.Integer(), nullable=False),
        sa.Column('next_tick_at', UtcDateTime(), nullable=True),
        sa.Column('next_fire_at', UtcDateTime(), nullable=True),
        sa.Column('queued_tick_at', UtcDateTime(), nullable=True),
        sa.Column('last_run_kind', sa.String(8), nullable=True),
        sa.Column('last_run_id', sa.String(64), nullable=True),
        sa.Column('owner_key_hash', sa.String(64), nullable=True),
        sa.Column('owner_user_id', sa.String(32), nullable=True),
        sa.Column('created_by', sa.String(160), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('schedule_id'),
        sa.UniqueConstraint('tenant_id', 'name', name='uq_schedules_tenant_name'),
    )
    op.create_index('ix_schedules_due', 'schedules', ['next_fire_at'])
    op.create_index('ix_schedules_queued', 'schedules', ['queued_tick_at'])
    op.create_index('ix_schedules_owner', 'schedules', ['owner_key_hash'])
    op.create_index('ix_schedules_name', 'schedules', ['name'])
    op.create_table(
        'schedule_ticks',
        sa.Column('schedule_id', sa.String(32), nullable=False),
        sa.Column('tick_at', UtcDateTime(), nullable=False),
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('outcome', sa.String(8), nullable=False),
        sa.Column('reason', sa.Text(), nullable=True),
        sa.Column('manual', sa.Boolean(), nullable=False),
        sa.Column('fired_at', UtcDateTime(), nullable=True),
        sa.Column('recorded_at', UtcDateTime(), nullable=False),
        sa.Column('run_kind', sa.String(8), nullable=True),
        sa.Column('run_id', sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint('schedule_id', 'tick_at'),
    )
    op.create_index('ix_schedule_ticks_recorded', 'schedule_ticks', ['recorded_at'])
    if op.get_context().dialect.name == 'postgresql':
        for table in ('schedules', 'schedule_ticks'):
            op.execute(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
            op.execute(f'CREATE POLICY tenant_rows ON {table} USING {_OWN} WITH CHECK {_OWN}')
    for table in ('api_keys', 'oauth_tokens'):
        for had, new in _NEW_SCOPES.items():
            op.execute(add_scope(op.get_context().dialect.name, table, had, new))


def downgrade() -> None:
    op.drop_table('schedule_ticks')
    op.drop_table('schedules')
