"""row-level security on PostgreSQL: every table with a tenant column shows and accepts, to the role ``agora_app``,
only the rows of the tenant ``app.tenant_id`` names (unset: none)

The hub connects as the tables' owner, who runs migrations and the hub's own work and whom the policies do not bind;
a call made for a tenant works as ``agora_app``, which owns nothing (store/postgres.py, store/tenancy.py). Some rows
are seen beyond their tenant, never written: hub-wide events and MCP servers (no tenant), listed marketplace listings
and public search documents. SQLite: nothing changes.

Revision ID: 0032
Revises: 0031
Create Date: 2026-11-28
"""
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None

APP_ROLE = 'agora_app'  # store/postgres.py works as this role
OWN = "(tenant_id = current_setting('app.tenant_id', true))"

# Each tenant-scoped table, with the rows every tenant may read besides its own (None: none).
TABLES: dict[str, str | None] = {
    'tenants': None,
    'api_keys': None,
    'memberships': None,
    'agents': None,
    'agent_capabilities': None,
    'audit_log': None,
    'mcp_servers': 'tenant_id IS NULL',
    'messages': None,
    'inbox': None,
    'lent_ranges': None,
    'subscriptions': None,
    'events': 'tenant_id IS NULL',
    'tasks': None,
    'a2a_tasks': None,
    'workflows': None,
    'workflow_definitions': None,
    'market_listings': "status = 'listed'",
    'hosting_nodes': None,
    'market_instances': None,
    'market_usage': None,
    'activity': None,
    'search_documents': 'public',
    'chat_conversations': None,
    'import_ledger': None,
}


def upgrade() -> None:
    if op.get_context().dialect.name != 'postgresql':
        return
    run = op.execute
    # Statements only (no reads of the catalog), so `agora db upgrade --sql` prints them as they run. A role is the
    # cluster's: another database's hub may have made it already. An owner who may not make roles gets a notice, and
    # the hub warns at each start that the policies do not bind it (store/postgres.py says what to run). (No percent
    # sign: the offline SQL doubles it.)
    run(f"""DO $$ DECLARE s text := quote_ident(current_schema()); BEGIN
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
        END IF;
        IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
            EXECUTE 'GRANT {APP_ROLE} TO ' || quote_ident(current_user);
        END IF;
    EXCEPTION
        WHEN duplicate_object OR unique_violation THEN NULL;
        WHEN insufficient_privilege THEN
            RAISE NOTICE 'row-level security: this database user may not create or grant the role {APP_ROLE}';
            RETURN;
    END;
    -- The tables and sequences of the hub's schema, those later migrations make included.
    EXECUTE 'GRANT USAGE ON SCHEMA ' || s || ' TO {APP_ROLE}';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ' || s || ' TO {APP_ROLE}';
    EXECUTE 'GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ' || s || ' TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || s || ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || s || ' GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {APP_ROLE}';
END $$""")
    for table, shared in TABLES.items():
        run(f'ALTER TABLE {table} ENABLE ROW LEVEL SECURITY')
        run(f'CREATE POLICY tenant_rows ON {table} USING {OWN} WITH CHECK {OWN}')
        if shared:
            run(f'CREATE POLICY shared_rows ON {table} FOR SELECT USING ({shared})')


def downgrade() -> None:
    if op.get_context().dialect.name != 'postgresql':
        return
    for table, shared in TABLES.items():
        if shared:
            op.execute(f'DROP POLICY shared_rows ON {table}')
        op.execute(f'DROP POLICY tenant_rows ON {table}')
        op.execute(f'ALTER TABLE {table} DISABLE ROW LEVEL SECURITY')
