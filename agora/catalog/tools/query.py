"""agora.query.*"""

from agora.core.services import agents
from agora_sdk.wire import agents as w
from agora_sdk.wire import discovery as d
from agora_sdk.wire.common import Empty

from ..tool import Tool
from .agents import READ
from .discovery import query_services

TOOLS = [
    Tool(
        name="agora.query.agents",
        version="1.0.0",
        description=(
            "Find agents by capabilities (all of / any of), status, service tier and free text over name, "
            "description and capabilities, with cursor pagination."
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
        description="Marketplace statistics: agent counts by status, capability and service tier.",
        input_model=Empty,
        output_model=w.MarketplaceStats,
        handler=agents.marketplace,
        scopes=READ,
        read_only=True,
    ),
]
