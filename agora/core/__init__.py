"""The domain: principals, call context and the services behind every tool (no HTTP, MCP or A2A here)."""
