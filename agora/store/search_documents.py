"""What the search index holds of each thing it finds: one document per agent, listing and catalog tool.

Built from the source row by pure functions, so the store writes a document in the same transaction as its source
(``store/ops/search.put``) and a rebuild gives exactly what the writes gave.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

# "LexiTranslate-FR", "invoice_parser.v2" → "lexi translate fr", "invoice parser v2": a name's parts are words too.
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[-_.:/]+")


def name_words(name: str) -> str:
    return " ".join(_SEPARATORS.sub(" ", _CAMEL.sub(" ", name)).lower().split())


def text_hash(title: str, tags: str, body: str) -> str:
    return hashlib.blake2b(f"{title}\n{tags}\n{body}".encode(), digest_size=16).hexdigest()


def embedding_text(doc: dict[str, Any]) -> str:
    """The text an embedder turns into the document's vector."""
    return f"{doc['title']}. {doc['tags']}. {doc['body']}"


def _document(
    kind: str, ref_id: str, tenant_id: str | None, public: bool, title: str, tags: list[str], body: str, now: datetime,
    **filters: Any,
) -> dict[str, Any]:  # fmt: skip
    tag_text = " ".join(dict.fromkeys(t for t in [*tags, name_words(title)] if t))
    return {
        "kind": kind, "ref_id": ref_id, "tenant_id": tenant_id, "public": public, "title": title, "tags": tag_text,
        "body": body, "category": filters.get("category"), "price": filters.get("price"),
        "pricing_model": filters.get("pricing_model"), "currency": filters.get("currency"), "region": filters.get("region"),
        "languages": " ".join(sorted({str(lang).lower() for lang in filters.get("languages") or []})),
        "updated_at": now, "text_hash": text_hash(title, tag_text, body),
    }  # fmt: skip


def _price(pricing: dict[str, Any] | None) -> dict[str, Any]:
    if not pricing:
        return {}
    try:
        price = float(Decimal(str(pricing.get("price", 0))))
    except (InvalidOperation, ValueError):
        return {}
    return {"price": price, "pricing_model": pricing.get("model") or pricing.get("type"), "currency": pricing.get("currency")}


def _words(values: Any) -> list[str]:
    return [str(v) for v in values] if isinstance(values, list) else []


def agent_document(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An agent, seen by its own tenant. Its manifest's pricing and placement, and ``metadata`` ``category``,
    ``languages`` and ``region`` when it states them, are what the filters see."""
    manifest = row.get("manifest") or {}
    metadata = row.get("metadata") or {}
    requirements = manifest.get("host_requirements") or {}
    category = metadata.get("category") if isinstance(metadata.get("category"), str) else None
    return _document(
        "agent", row["agent_id"], row["tenant_id"], False, row["agent_name"],
        [*_words(row.get("capabilities")), category or ""], row.get("description") or "", now,
        category=category, languages=_words(metadata.get("languages")),
        region=requirements.get("preferred_region") or (metadata.get("region") if isinstance(metadata.get("region"), str) else None),
        **_price(manifest.get("pricing")),
    )  # fmt: skip


def listing_document(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A marketplace listing: every tenant's to find while listed, its publisher's only once unlisted."""
    return _document(
        "listing", row["listing_id"], row["tenant_id"], row["status"] == "listed", row["agent_name"],
        [*_words(row.get("capabilities")), row.get("category") or ""], row.get("description") or "", now,
        category=row.get("category"), languages=_words(row.get("languages")),
        region=(row.get("host_requirements") or {}).get("preferred_region"), **_price(row.get("pricing")),
    )  # fmt: skip


def service_document(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A tool of the hub's catalog (a row of ``services``): every tenant's to find."""
    name = row["service_name"]
    return _document("service", name, None, True, name, [row.get("category") or ""], row.get("description") or "", now,
                     category=row.get("category"))  # fmt: skip


def imported_tool_document(server: str, tenant_id: str | None, name: str, description: str, now: datetime) -> dict[str, Any]:
    """A tool an external MCP server gives the hub (``ext.<server>.<tool>``): seen as its server is, by every tenant
    for a shared server, else by the server's tenant."""
    return _document("service", name, tenant_id, tenant_id is None, name, ["mcp", server], description, now, category=f"mcp:{server}")
