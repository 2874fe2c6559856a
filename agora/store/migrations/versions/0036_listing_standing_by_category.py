"""listings best rated or most reputable first within a category: an index each, so a discover page of one category
is read in order and counted from the index, as a page of every category is

Revision ID: 0036
Revises: 0035
Create Date: 2026-11-29
"""
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_market_listings_category_rating', 'market_listings', ['status', 'category', 'rating', 'listing_id'])
    op.create_index('ix_market_listings_category_reputation', 'market_listings', ['status', 'category', 'reputation', 'listing_id'])


def downgrade() -> None:
    op.drop_index('ix_market_listings_category_reputation', 'market_listings')
    op.drop_index('ix_market_listings_category_rating', 'market_listings')
