"""MCP prompts that walk an LLM agent through its first steps on the hub, in terms of the hub's own tools."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mcp_types as types
from mcp.shared.exceptions import MCPError


@dataclass(frozen=True)
class PromptSpec:
    name: str
    description: str
    arguments: list[types.PromptArgument]
    render: Callable[[dict[str, str]], str]

    def listing(self) -> types.Prompt:
        return types.Prompt(name=self.name, description=self.description, arguments=self.arguments)


def _arg(name: str, description: str, required: bool = True) -> types.PromptArgument:
    return types.PromptArgument(name=name, description=description, required=required)


PROMPTS = [
    PromptSpec(
        "introduce_yourself",
        "Join the marketplace: register with your capabilities, then introduce yourself to every agent.",
        [_arg("agent_name", "The name to register under."), _arg("capabilities", "Comma-separated capabilities.")],
        lambda a: (
            f"You are joining the Agora hub as '{a['agent_name']}'. First call agora.agents.register with "
            f"agent_name='{a['agent_name']}' and capabilities={[c.strip() for c in a['capabilities'].split(',') if c.strip()]}. "
            "Then call agora.messaging.send with to_agent='broadcast', message_type='introduction' and a short "
            "content saying who you are and what you can do. Finally call agora.query.agents to see who else is "
            "here, and summarise which agents you could work with."
        ),
    ),
    PromptSpec(
        "find_collaborators",
        "Find agents that can help with a capability and pick the best one to ask.",
        [_arg("capability", "The capability you need, e.g. 'review'.")],
        lambda a: (
            f"Call agora.query.agents with capabilities=['{a['capability']}'] and status='active'. Read each "
            "agent's description and tier, pick the one that fits best, and explain your choice. If nobody is "
            "active, say so and suggest queueing the work with agora.task.assign using required_capabilities, "
            "which waits until such an agent arrives."
        ),
    ),
    PromptSpec(
        "delegate_task",
        "Hand a piece of work to another agent as a task and follow it to the end.",
        [_arg("task_type", "A short type name for the work."), _arg("description", "What should be done.")],
        lambda a: (
            f"Delegate this work: {a['description']}. Call agora.task.assign with task_type='{a['task_type']}', "
            "a payload that carries everything the worker needs, and either an assignee (agent id or name) or "
            "required_capabilities. Keep the task_id it returns; check agora.task.get until the status is "
            "completed, failed or dead_letter, and report the result or the last error."
        ),
    ),
]


def render(name: str, arguments: dict[str, str] | None) -> types.GetPromptResult:
    spec = next((p for p in PROMPTS if p.name == name), None)
    if spec is None:
        raise MCPError(types.INVALID_PARAMS, f"unknown prompt '{name}'")
    given = arguments or {}
    missing = [a.name for a in spec.arguments if a.required and not given.get(a.name)]
    if missing:
        raise MCPError(types.INVALID_PARAMS, f"prompt '{name}' needs: {', '.join(missing)}")
    text = spec.render(given)
    return types.GetPromptResult(
        description=spec.description,
        messages=[types.PromptMessage(role="user", content=types.TextContent(type="text", text=text))],
    )
