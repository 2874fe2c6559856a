"""Whose rows a store operation may touch: row-level security's key on PostgreSQL.

A tool call runs its store operations as its principal's tenant (``serve``); on PostgreSQL they then work as a role
that owns nothing, which the policies of migration 0032 show and let write only that tenant's rows, whatever an
operation's own ``WHERE`` says — defence in depth under the tenant filters every operation has anyway
(store/postgres.py). The hub's own work (background loops, authentication, an admin's calls) runs hub-wide, as the
tables' owner, as do the calls that reach across tenants by design (``Tool.crosses_tenants``: the marketplace) and
a person's own memberships (``hub_wide``). SQLite has no row-level security: there the scope is only carried.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token

HUB_WIDE = "*"  # every tenant's rows (no tenant id holds the character)

_scope: ContextVar[str] = ContextVar("agora_store_tenant", default=HUB_WIDE)


def current() -> str:
    """The tenant the running task's store operations act as (``HUB_WIDE``: all)."""
    return _scope.get()


def serve(tenant_id: str | None) -> Token[str]:
    """Act as ``tenant_id`` (None: hub-wide) from here in this task; ``restore`` with the token given back."""
    return _scope.set(tenant_id or HUB_WIDE)


def restore(token: Token[str]) -> None:
    _scope.reset(token)


@contextlib.contextmanager
def hub_wide() -> Iterator[None]:
    """The operations inside reach every tenant's rows: for the parts of a tenant's call that cross tenants by design."""
    token = _scope.set(HUB_WIDE)
    try:
        yield
    finally:
        _scope.reset(token)
