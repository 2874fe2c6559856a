"""The gateway's registered MCP servers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from agora_sdk.errors import Conflict

from ..schema import mcp_servers


def taken(name: str) -> Conflict:
    return Conflict(f"an MCP server named '{name}' is already registered", details={"field": "name"})


def insert_server(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    try:
        conn.execute(insert(mcp_servers).values(**row))
    except IntegrityError:
        raise taken(row["name"]) from None
    return row


def exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(mcp_servers.c.server_id).where(mcp_servers.c.name == name)).first() is not None


def all_servers(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(select(mcp_servers).order_by(mcp_servers.c.name)).mappings()]


def delete_server(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(mcp_servers).where(mcp_servers.c.name == name)).mappings().first()
    if row is not None:
        conn.execute(delete(mcp_servers).where(mcp_servers.c.name == name))
    return dict(row) if row else None
