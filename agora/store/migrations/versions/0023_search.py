"""search: the search index (documents of agents, listings and catalog tools, with the engine's full text) and the
languages a listing works in

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from agora.store.types import UtcDateTime

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
SERIAL = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

# SQLite: an FTS5 table whose content is search_documents (external content: the text is stored once), kept in step
# by triggers in the writing transaction. Porter stemming over unicode61 without diacritics; prefixes of 2 and 3
# characters indexed for search-as-you-type. search_vocab lists the indexed terms (typo correction reads it).
SQLITE = [
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        title, tags, body, content='search_documents', content_rowid='doc_seq',
        tokenize='porter unicode61 remove_diacritics 2', prefix='2 3')""",
    "CREATE VIRTUAL TABLE search_vocab USING fts5vocab(search_fts, row)",
    """CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN
        INSERT INTO search_fts(rowid, title, tags, body) VALUES (new.doc_seq, new.title, new.tags, new.body);
    END""",
    """CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, tags, body) VALUES ('delete', old.doc_seq, old.title, old.tags, old.body);
    END""",
    """CREATE TRIGGER search_documents_au AFTER UPDATE OF title, tags, body ON search_documents BEGIN
        INSERT INTO search_fts(search_fts, rowid, title, tags, body) VALUES ('delete', old.doc_seq, old.title, old.tags, old.body);
        INSERT INTO search_fts(rowid, title, tags, body) VALUES (new.doc_seq, new.title, new.tags, new.body);
    END""",
]

# PostgreSQL: a generated tsvector (name weighted above tags above the description) under a GIN index.
POSTGRES = [
    """ALTER TABLE search_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', tags), 'B')
        || setweight(to_tsvector('english', body), 'C')) STORED""",
    "CREATE INDEX ix_search_documents_tsv ON search_documents USING gin (tsv)",
]


def upgrade() -> None:
    op.add_column('market_listings', sa.Column('languages', JSON, nullable=True))
    op.create_table(
        'search_documents',
        sa.Column('doc_seq', SERIAL, primary_key=True, autoincrement=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('ref_id', sa.String(length=160), nullable=False),
        sa.Column('tenant_id', sa.String(length=64), nullable=True),
        sa.Column('public', sa.Boolean(), nullable=False),
        sa.Column('title', sa.Text(), nullable=False),
        sa.Column('tags', sa.Text(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('category', sa.String(length=64), nullable=True),
        sa.Column('price', sa.Float(), nullable=True),
        sa.Column('pricing_model', sa.String(length=16), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('region', sa.String(length=64), nullable=True),
        sa.Column('languages', sa.Text(), nullable=False),
        sa.Column('updated_at', UtcDateTime(), nullable=False),
        sa.Column('text_hash', sa.String(length=32), nullable=False),
        sa.Column('embedding', sa.LargeBinary(), nullable=True),
        sa.Column('embedder', sa.String(length=160), nullable=True),
        sa.Column('embedded_hash', sa.String(length=32), nullable=True),
        sa.Column('embedded_at', UtcDateTime(), nullable=True),
        sa.UniqueConstraint('kind', 'ref_id', name='uq_search_documents_ref'),
    )
    op.create_index('ix_search_documents_tenant', 'search_documents', ['tenant_id', 'kind'])
    op.create_index('ix_search_documents_public', 'search_documents', ['public', 'kind'])
    op.create_index('ix_search_documents_unembedded', 'search_documents', ['embedded_hash'])
    for statement in SQLITE if op.get_bind().dialect.name == 'sqlite' else POSTGRES:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('search_documents_au', 'search_documents_ad', 'search_documents_ai'):
            op.execute(f'DROP TRIGGER {name}')
        op.execute('DROP TABLE search_vocab')
        op.execute('DROP TABLE search_fts')
    op.drop_index('ix_search_documents_unembedded', table_name='search_documents')
    op.drop_index('ix_search_documents_public', table_name='search_documents')
    op.drop_index('ix_search_documents_tenant', table_name='search_documents')
    op.drop_table('search_documents')
    op.drop_column('market_listings', 'languages')
