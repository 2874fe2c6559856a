"""search vectors by time: an index on search_documents.embedded_at, so a hub learns whether any vector was stored
since it last looked from the index's end instead of reading every row

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-26
"""
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_search_documents_embedded_at', 'search_documents', ['embedded_at'])


def downgrade() -> None:
    op.drop_index('ix_search_documents_embedded_at', table_name='search_documents')
