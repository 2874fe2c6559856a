"""Toolsets: ``/mcp?toolsets=messaging,task`` serves only those categories, to fit a client's tool cap."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from agora.catalog import Catalog, Tool
from agora_sdk.errors import InvalidArgument

ALWAYS = frozenset({"tools"})  # agora.tools.search / agora.tools.call reach every other tool


@dataclass(frozen=True)
class Toolsets:
    categories: frozenset[str] | None  # None: every category

    def includes(self, tool: Tool) -> bool:
        return self.includes_category(tool.category)

    def includes_category(self, category: str) -> bool:
        return self.categories is None or category in self.categories or category in ALWAYS

    @classmethod
    @lru_cache(maxsize=256)
    def parse(cls, raw: str | None, catalog: Catalog) -> Toolsets:
        if not raw:
            return cls(None)
        wanted = frozenset(part.strip() for part in raw.split(",") if part.strip())
        known = {tool.category for tool in catalog} | {"ext"}  # ext: tools of external MCP servers (the gateway)
        unknown = sorted(wanted - known)
        if unknown:
            raise InvalidArgument(
                f"unknown toolset(s): {', '.join(unknown)}; the categories are {', '.join(sorted(known))}",
                details={"field": "toolsets", "known": sorted(known)},
            )
        return cls(wanted)
