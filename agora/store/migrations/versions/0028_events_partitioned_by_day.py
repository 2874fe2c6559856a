"""events partitioned by day on PostgreSQL, so retention drops a past day whole (store/partitions.py)

The table as it was becomes the first partition (every row up to the end of today) without copying a row: its primary
key becomes (seq, created_at), as a partitioned table's must hold the partition key, and it is attached; the sequence
goes on handing out the same seqs. Then the default partition and the next days' ones. SQLite: nothing changes.

Revision ID: 0028
Revises: 0027
Create Date: 2026-11-26
"""
from datetime import date, datetime, timezone

from alembic import op

from agora.store import partitions

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None

INDEXES = {'ix_events_created': '(created_at)', 'ix_events_tenant_seq': '(tenant_id, seq)'}


def upgrade() -> None:
    if op.get_context().dialect.name != 'postgresql':
        return
    # Statements only (no reads of the catalog), so `agora db upgrade --sql` prints them as they run.
    today = datetime.now(timezone.utc).date()
    first = partitions.partition_name('events', today)
    run = op.execute
    run('ALTER TABLE events RENAME TO events_unpartitioned')
    run(f'ALTER INDEX events_pkey RENAME TO {first}_pkey')
    for index in INDEXES:
        run(f'ALTER INDEX {index} RENAME TO {first}_{index}')
    run('CREATE TABLE events (LIKE events_unpartitioned INCLUDING DEFAULTS, PRIMARY KEY (seq, created_at)) PARTITION BY RANGE (created_at)')
    run('ALTER SEQUENCE events_seq_seq OWNED BY events.seq')
    run('ALTER TABLE events_unpartitioned ALTER COLUMN seq DROP DEFAULT')
    run(f'ALTER TABLE events_unpartitioned DROP CONSTRAINT {first}_pkey')
    run(f'ALTER TABLE events_unpartitioned ADD CONSTRAINT {first}_pkey PRIMARY KEY (seq, created_at)')
    run(f'ALTER TABLE events ATTACH PARTITION events_unpartitioned FOR VALUES FROM (MINVALUE) TO ({_day_bound(today, 1)})')
    run(f'ALTER TABLE events_unpartitioned RENAME TO {first}')
    for index, columns in INDEXES.items():  # on the table: each partition's matching index is attached, not rebuilt
        run(f'CREATE INDEX {index} ON events {columns}')
    run(f'CREATE TABLE {partitions.partition_name("events", None)} PARTITION OF events DEFAULT')
    for ahead in range(1, partitions.AHEAD + 1):  # then the retention job makes each next day's (store/partitions.py)
        day = today + ahead * partitions.DAY
        run(f'CREATE TABLE {partitions.partition_name("events", day)} PARTITION OF events '
            f'FOR VALUES FROM ({_day_bound(day, 0)}) TO ({_day_bound(day, 1)})')


def _day_bound(day: date, days_after: int) -> str:
    return partitions.bound(partitions.start_of(day + days_after * partitions.DAY))


def downgrade() -> None:
    if op.get_context().dialect.name != 'postgresql':
        return
    run = op.execute
    run('CREATE TABLE events_whole (LIKE events INCLUDING DEFAULTS)')
    run('INSERT INTO events_whole SELECT * FROM events')
    run('ALTER SEQUENCE events_seq_seq OWNED BY events_whole.seq')
    run('DROP TABLE events')
    run('ALTER TABLE events_whole RENAME TO events')
    run('ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (seq)')
    for index, columns in INDEXES.items():
        run(f'CREATE INDEX {index} ON events {columns}')
