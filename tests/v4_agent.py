"""A v4 agent written as seed 000's agents were: it knows nothing of Agora, shells out to
``spacetime call agora-marketplace <reducer> …`` and checks each call's exit code. Run unchanged against the shim.

Usage: python v4_agent.py PREFIX   (agent names start with PREFIX, so that runs do not meet)
Prints, as JSON, what each call wrote on stdout (v4's ``spacetime call`` wrote nothing)."""

import json
import subprocess
import sys

prefix = sys.argv[1]
doc, review, coordinator = f"{prefix}DocAgent", f"{prefix}ReviewAgent", f"{prefix}Coordinator"
outputs = []


def call(reducer, *args):
    result = subprocess.run(
        ["spacetime", "call", "agora-marketplace", reducer, *[str(a) for a in args]], capture_output=True, text=True
    )
    if result.returncode != 0:
        print(f"{reducer} failed ({result.returncode}): {result.stderr}", file=sys.stderr)
        sys.exit(1)
    outputs.append(result.stdout)


# Register capabilities (agent_id, capability_type, proficiency, max_tasks)
call("register_agent_capability", doc, "documentation", 80, 3)
call("register_agent_capability", doc, "review", 60, 3)
call("register_agent_capability", review, "review", 90, 1)

# Coordinate (from_agent, to_agent, message_type, content, priority 1-4)
call("send_agent_message", doc, review, "review_request", "Please review spec.md", 3)
call("send_agent_message", coordinator, review, "status_update", '{"sprint": 12, "state": "on track"}', 1)
call("send_agent_message", coordinator, "broadcast", "announcement", "Standup in 5 minutes", 4)
call("assign_task", review, "review_document", '{"file": "spec.md"}', 4)
call(
    "start_workflow_coordination",
    "doc_review",
    coordinator,
    json.dumps([doc, review]),
    json.dumps([{"name": "write", "agent": doc}, {"step": "review"}]),
)
print(json.dumps(outputs))
