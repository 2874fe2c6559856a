"""reviews of marketplace listings by verified buyers, their history, and each listing's rating (Bayesian), count,
sum and distribution, and its reputation with what it was reckoned from; row-level security on the reviews
(PostgreSQL)

Revision ID: 0033
Revises: 0032
Create Date: 2026-11-28
"""
import sqlalchemy as sa
from alembic import op

from agora.store.types import Json, UtcDateTime

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

_OWN = "(tenant_id = current_setting('app.tenant_id', true))"


def upgrade() -> None:
    with op.batch_alter_table('market_listings') as batch:
        batch.add_column(sa.Column('rating', sa.Float(), nullable=False, server_default=sa.text('3')))
        batch.add_column(sa.Column('rating_count', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch.add_column(sa.Column('rating_total', sa.Integer(), nullable=False, server_default=sa.text('0')))
        batch.add_column(sa.Column('rating_distribution', Json, nullable=False, server_default=sa.text("'[0, 0, 0, 0, 0]'")))
        batch.add_column(sa.Column('reputation', sa.Float(), nullable=False, server_default=sa.text('70.75')))
        batch.add_column(sa.Column('reputation_inputs', Json, nullable=True))
    op.create_index('ix_market_listings_rating', 'market_listings', ['status', 'rating', 'listing_id'])
    op.create_index('ix_market_listings_reputation', 'market_listings', ['status', 'reputation', 'listing_id'])
    op.create_table(
        'market_reviews',
        sa.Column('review_id', sa.String(32), nullable=False),
        sa.Column('listing_id', sa.String(32), nullable=False),
        sa.Column('tenant_id', sa.String(64), nullable=False),
        sa.Column('author', sa.String(200), nullable=False),
        sa.Column('rating', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('listing_version', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('hidden_reason', sa.Text(), nullable=True),
        sa.Column('response', sa.Text(), nullable=True),
        sa.Column('responded_at', UtcDateTime(), nullable=True),
        sa.Column('edits', sa.Integer(), nullable=False),
        sa.Column('created_at', UtcDateTime(), nullable=False),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('review_id'),
        sa.UniqueConstraint('listing_id', 'tenant_id', name='uq_market_reviews_tenant'),
    )
    op.create_index('ix_market_reviews_listing', 'market_reviews', ['listing_id', 'status', 'updated_at', 'review_id'])
    op.create_index('ix_market_reviews_tenant', 'market_reviews', ['tenant_id', 'created_at'])
    op.create_table(
        'market_review_history',
        sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('review_id', sa.String(32), nullable=False),
        sa.Column('rating', sa.Integer(), nullable=False),
        sa.Column('title', sa.String(200), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('listing_version', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(16), nullable=False),
        sa.Column('replaced_at', UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('entry_id'),
    )
    op.create_index('ix_market_review_history_review_id', 'market_review_history', ['review_id'])
    if op.get_context().dialect.name == 'postgresql':
        op.execute('ALTER TABLE market_reviews ENABLE ROW LEVEL SECURITY')
        op.execute(f'CREATE POLICY tenant_rows ON market_reviews USING {_OWN} WITH CHECK {_OWN}')
        op.execute("CREATE POLICY shared_rows ON market_reviews FOR SELECT USING (status = 'published')")


def downgrade() -> None:
    op.drop_table('market_review_history')
    op.drop_table('market_reviews')
    op.drop_index('ix_market_listings_reputation', 'market_listings')
    op.drop_index('ix_market_listings_rating', 'market_listings')
    with op.batch_alter_table('market_listings') as batch:
        for column in ('reputation_inputs', 'reputation', 'rating_distribution', 'rating_total', 'rating_count', 'rating'):
            batch.drop_column(column)
