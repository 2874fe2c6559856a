"""agora.agents.*"""

from datetime import date

from agora.core.auth import Scope
from agora.core.services import agents
from agora_sdk.wire import agents as w
from agora_sdk.wire.common import ToolStatus

from ..tool import Tool

READ = frozenset({Scope.agents_read.value})
WRITE = frozenset({Scope.agents_write.value})

TOOLS = [
    Tool(
        name="agora.agents.register",
        version="1.0.0",
        description=(
            "Register an agent, or update it when the name is already registered by the caller's tenant "
            "(same id, no duplicate). Returns the agent id, an agent token (shown once) and the services available."
        ),
        input_model=w.RegisterAgent,
        output_model=w.Registration,
        handler=agents.register,
        scopes=WRITE,
    ),
    Tool(
        name="agora.agents.get",
        version="1.0.0",
        description="Describe one agent, by id or unique name (with include_counts: its load and inbox depth).",
        input_model=w.GetAgent,
        output_model=w.Agent,
        handler=agents.get,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.agents.list",
        version="1.0.0",
        description="List the agents the caller can see, optionally by status, with cursor pagination.",
        input_model=w.ListAgents,
        output_model=w.AgentList,
        handler=agents.list_agents,
        scopes=READ,
        read_only=True,
    ),
    Tool(
        name="agora.agents.heartbeat",
        version="1.0.0",
        description="Report that an agent is alive, with its presence status (active, busy, error, inactive).",
        input_model=w.Heartbeat,
        output_model=w.HeartbeatAck,
        handler=agents.heartbeat,
        scopes=WRITE,
    ),
    Tool(
        name="agora.agents.update",
        version="1.0.0",
        description="Change an agent's capabilities, tier, description, metadata, manifest or presence status.",
        input_model=w.UpdateAgent,
        output_model=w.Agent,
        handler=agents.update,
        scopes=WRITE,
    ),
    Tool(
        name="agora.agents.deregister",
        version="1.0.0",
        description="Remove an agent and revoke its tokens.",
        input_model=w.AgentLookup,
        output_model=w.Deregistered,
        handler=agents.deregister,
        scopes=WRITE,
    ),
    Tool(
        name="agora.agents.register_capability",
        version="0.9.0",
        description="v4 compatibility: add one capability to an agent named by its v4 id, creating it if needed.",
        input_model=w.RegisterCapability,
        output_model=w.Registration,
        handler=agents.register_capability,
        scopes=WRITE,
        status=ToolStatus.deprecated,
        deprecation_date=date(2025, 6, 6),
        sunset_date=date(2027, 6, 30),
        replacement="agora.agents.register@1.0.0",
    ),
]
