"""Every tool of the hub, by category. Adding a capability = adding tools here (and storage for them)."""

from __future__ import annotations

from ..tool import Tool
from . import a2a, admin, agents, conversations, credits, discovery, marketplace, mcp_servers, messaging, meta, query, reviews, schedules, tasks, users, workflows


def all_tools() -> list[Tool]:
    return [*agents.TOOLS, *messaging.TOOLS, *conversations.TOOLS, *tasks.TOOLS, *workflows.TOOLS, *schedules.TOOLS, *a2a.TOOLS, *query.TOOLS, *discovery.TOOLS, *meta.TOOLS, *mcp_servers.TOOLS, *marketplace.TOOLS, *credits.TOOLS, *reviews.TOOLS, *admin.TOOLS, *users.TOOLS]
