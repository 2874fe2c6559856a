"""Row-level security on PostgreSQL (issue 57): a store call written without its tenant filter still sees and changes
only the rows of the tenant its call acts as, because the hub works as a role the policies bind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Connection, select, text, update
from sqlalchemy.exc import DBAPIError

from agora.store import Store, open_store, tenancy
from agora.store.schema import agents, market_listings, tenants

from ..conftest import fresh_postgres_url
from ..test_store import NOW, add_agent, add_tenant


@pytest.fixture
async def store(postgres_url: str, tmp_path) -> AsyncIterator[Store]:
    s = open_store(fresh_postgres_url(postgres_url), tmp_path)
    await s.start()
    await s.write(_two_tenants)
    yield s
    await s.close()


def _two_tenants(conn: Connection) -> None:
    for tenant, agent in (("t-a", "ag-a"), ("t-b", "ag-b")):
        add_tenant(conn, tenant)
        add_agent(conn, tenant, agent, f"{agent}-name")
        for status in ("listed", "unlisted"):
            conn.execute(market_listings.insert().values(
                listing_id=f"{agent}-{status}", tenant_id=tenant, agent_name=f"{agent}-{status}", version=1, status=status,
                description="", category="c", capabilities=[], repository={}, build_config={}, host_requirements={},
                pricing={}, max_instances=1, search_text="", created_at=NOW, updated_at=NOW,
            ))  # fmt: skip


def every_agent(conn: Connection) -> list[str]:
    """Deliberately without a tenant filter."""
    return sorted(conn.execute(select(agents.c.agent_id)).scalars())


def every_listing(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(market_listings.c.listing_id)).scalars())


def rename_every_agent(conn: Connection) -> int:
    return conn.execute(update(agents).values(description="renamed")).rowcount


def describe_other(conn: Connection) -> list[str]:
    return sorted(conn.execute(select(agents.c.agent_id).where(agents.c.description == "renamed")).scalars())


async def test_an_unfiltered_read_sees_only_the_callers_rows(store: Store) -> None:
    assert await store.read(every_agent) == ["ag-a", "ag-b"]  # the hub's own work: every tenant
    for tenant, agent in (("t-a", "ag-a"), ("t-b", "ag-b")):
        scope = tenancy.serve(tenant)
        try:
            assert await store.read(every_agent) == [agent]
            assert await store.write(every_agent) == [agent]  # in a transaction too
            assert await store.read(lambda conn: sorted(conn.execute(select(tenants.c.tenant_id)).scalars())) == [tenant]
        finally:
            tenancy.restore(scope)


async def test_listed_listings_are_every_tenants_to_read_not_to_change(store: Store) -> None:
    scope = tenancy.serve("t-a")
    try:
        assert await store.read(every_listing) == ["ag-a-listed", "ag-a-unlisted", "ag-b-listed"]
        changed = await store.write(lambda conn: conn.execute(update(market_listings).values(description="x")).rowcount)
        assert changed == 2  # its own two
    finally:
        tenancy.restore(scope)


async def test_an_unfiltered_write_changes_only_the_callers_rows(store: Store) -> None:
    scope = tenancy.serve("t-a")
    try:
        assert await store.write(rename_every_agent) == 1
        with pytest.raises(DBAPIError, match="row-level security"):
            await store.write(lambda conn: add_agent(conn, "t-b", "ag-planted", "planted"))  # into another tenant
    finally:
        tenancy.restore(scope)
    assert await store.read(describe_other) == ["ag-a"]
    assert await store.read(every_agent) == ["ag-a", "ag-b"]  # nothing was planted


async def test_a_connection_serving_another_tenant_is_set_again(store: Store) -> None:
    """A pooled connection remembers the tenant it was set to: one of a pool of one serves both in turn."""
    one = open_store(store._engine.url.render_as_string(hide_password=False).replace("+asyncpg", ""), None, pg_pool_size=1)  # type: ignore[attr-defined]
    await one.start()
    try:
        for tenant, agent in (("t-a", "ag-a"), ("t-b", "ag-b"), ("t-a", "ag-a"), (None, None)):
            scope = tenancy.serve(tenant)
            try:
                assert await one.read(every_agent) == ([agent] if agent else ["ag-a", "ag-b"])
            finally:
                tenancy.restore(scope)
    finally:
        await one.close()


async def test_a_tenants_call_works_as_a_role_that_owns_nothing_and_bypasses_nothing(store: Store) -> None:
    def who(conn: Connection) -> tuple[str, bool, bool, str]:
        return conn.execute(text(
            "SELECT current_user, r.rolsuper, r.rolbypassrls, pg_get_userbyid(c.relowner) FROM pg_roles r, pg_class c "
            "WHERE r.rolname = current_user AND c.oid = 'agents'::regclass"
        )).one()  # fmt: skip

    scope = tenancy.serve("t-a")
    try:
        user, superuser, bypasses, owner = await store.read(who)
    finally:
        tenancy.restore(scope)
    assert (user, superuser, bypasses) == ("agora_app", False, False)
    assert owner != user
    assert (await store.read(who))[0] == owner  # the hub's own work: as the owner, again
