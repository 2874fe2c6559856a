"""The gateway's registered MCP servers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from agora_sdk.errors import Conflict

from ..schema import mcp_servers


def insert_server(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    try:
        conn.execute(insert(mcp_servers).values(**row))
    except IntegrityError:
        raise Conflict(f"an MCP server named '{row['name']}' is already registered", details={"field": "name"}) from None
    return row


def all_servers(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(mcp_servers).order_by(mcp_servers.c.name)).mappings()]


def delete_server(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(mcp_servers).where(mcp_servers.c.name == name)).mappings().first()
    if row is not None:
        conn.execute(delete(mcp_servers).where(mcp_servers.c.name == name))
    return dict(row) if row else None
