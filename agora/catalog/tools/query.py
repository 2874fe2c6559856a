"""agora.query.*"""

from agora.core.services import activity, agents
from agora_sdk.wire import monitoring as a
from agora_sdk.wire import agents as w
from agora_sdk.wire import discovery as d

from ..tool import Tool
from .agents import READ
from .discovery import query_services

TOOLS = [
    Tool(
        name="agora.query.activity",
        version="1.0.0",
        description=(
            "What the hub did over time: messages stored, tasks created/completed/failed, tool calls with their 4xx "
            "and 5xx answers and p50/p95 latency, per interval (10 s for the last hour), for the caller's tenant "
            "(the admin: all, or one)."
        ),
        input_model=a.ActivityRequest,
        output_model=a.Activity,
        handler=activity.read,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.query.agents",
        version="1.0.0",
        description=(
            "Find agents by capabilities (all of / any of), status, service tier and free text over name, "
            "description and capabilities, with cursor pagination. A marketplace instance's agent carries the listing "
            "it runs with its rating and reputation; min_rating, min_reputation and sort=rating|reputation keep to "
            "such agents (seed 001's discover flow)."
        ),
        input_model=w.QueryAgents,
        output_model=w.AgentList,
        handler=agents.query,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.query.services",
        version="1.0.0",
        description="Query the stored service catalog by category, version (exact or range) and status.",
        input_model=d.QueryServices,
        output_model=d.ServiceList,
        handler=query_services,
        read_only=True,
    ),
    Tool(
        name="agora.query.marketplace",
        version="1.0.0",
        description=(
            "Marketplace statistics: agent counts by status, capability, service tier and the whole stars of the listing "
            "an instance's agent runs; min_rating and min_reputation narrow every count to the agent of an instance "
            "whose listing stands so well."
        ),
        input_model=w.MarketplaceQuery,
        output_model=w.MarketplaceStats,
        handler=agents.marketplace,
        scopes=READ,
        read_only=True,
    ),
]
