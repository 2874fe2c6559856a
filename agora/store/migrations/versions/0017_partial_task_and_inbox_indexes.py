"""Indexes hold only the rows their lookups can find

Every lookup through these indexes names a value (an assignee, a preferred agent, a claimer, an ack time before a
cutoff), so the rows where the column is NULL were never read through them, yet each one was written: a capability
task's NULL assignee and claimer, a pending task's NULL preferred agent, an unacked delivery's NULL ack time. Those
entries were inserted and moved on every assign, claim, completion and send.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# (index, table, columns, WHERE before, WHERE after)
CHANGES = [
    ('ix_tasks_assignee', 'tasks', ['assignee', 'status'], None, "assignee IS NOT NULL"),
    ('ix_tasks_preferred', 'tasks', ['preferred_agent_id'], "status = 'pending'",
     "status = 'pending' AND preferred_agent_id IS NOT NULL"),
    ('ix_tasks_claimed_by', 'tasks', ['claimed_by', 'status'], None, "claimed_by IS NOT NULL"),
    ('ix_inbox_acked', 'inbox', ['acked_at'], None, "acked_at IS NOT NULL"),
]


def _recreate(name: str, table: str, columns: list[str], where: str | None) -> None:
    op.drop_index(name, table_name=table)
    partial = {} if where is None else {'sqlite_where': sa.text(where), 'postgresql_where': sa.text(where)}
    op.create_index(name, table, columns, **partial)


def upgrade() -> None:
    for name, table, columns, _before, after in CHANGES:
        _recreate(name, table, columns, after)


def downgrade() -> None:
    for name, table, columns, before, _after in CHANGES:
        _recreate(name, table, columns, before)
