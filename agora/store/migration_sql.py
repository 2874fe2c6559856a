"""SQL that more than one migration writes, on either engine (it runs in ``agora db upgrade --sql`` too, so it is a
statement, never rows read back)."""

from __future__ import annotations


def add_scope(dialect: str, table: str, had: str, new: str) -> str:
    """Give every row of ``table`` (``api_keys``, ``oauth_tokens``) whose scopes hold ``had`` the scope ``new`` too."""
    if dialect == 'postgresql':
        return f"UPDATE {table} SET scopes = scopes || '[\"{new}\"]'::jsonb WHERE scopes ? '{had}' AND NOT scopes ? '{new}'"
    has = "EXISTS (SELECT 1 FROM json_each({table}.scopes) WHERE value = '{scope}')"
    return (
        f"UPDATE {table} SET scopes = json_insert(scopes, '$[#]', '{new}') "
        f"WHERE scopes IS NOT NULL AND {has.format(table=table, scope=had)} AND NOT {has.format(table=table, scope=new)}"
    )
