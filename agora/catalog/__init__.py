"""The tool catalog: the single source of truth every door (REST, MCP, A2A, SDK, CLI) is built from."""

from .registry import Catalog, build_catalog
from .tool import Tool

__all__ = ["Catalog", "Tool", "build_catalog"]
