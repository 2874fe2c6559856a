"""MCP Inspector (the official debugging client, its CLI mode) lists the hub's tools and calls them: a tool's answer
and a tool's refusal both come back as results it accepts (it checks structured content against the tool's output
schema, even on an isError result).

Needs ``npx`` (Node's npm; ``-p node@22`` brings the Node version Inspector needs). Without it the test is skipped,
except under ``AGORA_REQUIRE_SERVICES=1`` (CI), where it must run.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from .hubproc import HubProcess
from .test_mcp_conformance import _npx

INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


def inspect(hub: HubProcess, key: str, *args: str) -> Any:
    command = [_npx(), "-y", "-p", "node@22", "-p", INSPECTOR, "mcp-inspector", "--cli", f"{hub.url}/mcp", "--transport", "http",
               "--header", f"Authorization: Bearer {key}", *args]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"{args}: exit {done.returncode}: {done.stdout[-2000:]}\n{done.stderr[-2000:]}") from None
    # Its exit status says whether the tool failed (an isError result); anything else is a failure to call.
    assert done.returncode == 0 or answer.get("isError"), f"{args}: exit {done.returncode}: {done.stdout[-2000:]}"
    return answer


def test_inspector_lists_and_calls_the_tools(sqlite_hub):
    key = sqlite_hub.admin_key
    listed = {tool["name"] for tool in inspect(sqlite_hub, key, "--method", "tools/list")["tools"]}
    assert {"agora.agents.register", "agora.messaging.send", "agora.query.agents", "agora.workflow.create"} <= listed
    registered = inspect(sqlite_hub, key, "--method", "tools/call", "--tool-name", "agora.agents.register", "--tool-arg", "agent_name=inspected")
    assert not registered.get("isError") and registered["structuredContent"]["agent_name"] == "inspected"
    services = inspect(sqlite_hub, key, "--method", "tools/call", "--tool-name", "agora.query.services")  # an output with an aliased field
    assert not services.get("isError") and "schema" in services["structuredContent"]["services"][0]
    refused = inspect(sqlite_hub, key, "--method", "tools/call", "--tool-name", "agora.workflow.create")  # no arguments
    assert refused["isError"] and refused["_meta"]["agora/error"]["code"] == "invalid_argument"
    assert refused["content"][0]["text"].startswith("invalid_argument: ")
