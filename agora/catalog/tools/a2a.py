"""agora.a2a.*: how an agent answers the A2A callers of its A2A front."""

from agora.core.auth import Scope
from agora.core.services import a2a
from agora_sdk.wire import a2a as w

from ..tool import Tool

TOOLS = [
    Tool(
        name="agora.a2a.update",
        version="1.0.0",
        description=(
            "Answer an A2A task the agent claimed (an a2a.message task, with its lease): move it to working, "
            "input_required, completed, failed, rejected…, with a status message; add or extend an artifact; or reply "
            "with a message alone. Every open A2A stream of the task gets the event at once."
        ),
        input_model=w.A2AUpdate,
        output_model=w.A2AUpdated,
        handler=a2a.update,
        scopes=frozenset({Scope.tasks_write.value}),
    ),
]
