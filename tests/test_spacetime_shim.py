"""The SDK's ``spacetime`` command: a v4 agent script that shells out to ``spacetime call agora-marketplace …`` runs
unchanged against a real hub (agents, messages as their senders with v4 priorities mapped, a task, a workflow); any
other call goes to the real ``spacetime`` further along PATH, never to the shim itself; failures look like
``spacetime``'s."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import call, ok, unique
from .hubproc import HubProcess, free_port

SHIM = Path(sys.executable).parent / "spacetime"  # the console script `pip install` put beside python
V4_AGENT = Path(__file__).with_name("v4_agent.py")


def run(args: list[str], env: dict[str, str], path: list[Path]) -> subprocess.CompletedProcess[str]:
    """A command run with only these directories on PATH (and the system's, which has no spacetime)."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}, **env}
    full["PATH"] = os.pathsep.join([*map(str, path), "/usr/bin", "/bin"])
    return subprocess.run(args, capture_output=True, text=True, env=full, timeout=60)


@pytest.fixture
def tenant_env(sqlite_hub: HubProcess, tmp_path: Path) -> dict[str, str]:
    """The shim's settings for a tenant of its own, with a key that may mint agent tokens (the admin scope)."""
    with sqlite_hub.client() as admin:
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("v4"), scopes=["admin", "agents:read", "agents:write", "messaging:send", "messaging:read", "messaging:receive", "tasks:read", "tasks:write", "workflows:read", "workflows:write"]))["key"]  # fmt: skip
    return {"AGORA_URL": sqlite_hub.url, "AGORA_API_KEY": key, "AGORA_SPACETIME_TOKENS": str(tmp_path / "tokens.json")}


@pytest.fixture
def real_spacetime(tmp_path: Path) -> Path:
    """An executable named spacetime that says how it was called (the SpacetimeDB CLI is not installable here; the
    shim only needs to find and run whatever spacetime comes next on PATH)."""
    bin_dir = tmp_path / "real-bin"
    bin_dir.mkdir()
    fake = bin_dir / "spacetime"
    fake.write_text('#!/bin/sh\necho "real spacetime: $*"\nexit 7\n')
    fake.chmod(0o755)
    return bin_dir


def test_a_v4_agent_script_runs_unchanged_against_the_hub(sqlite_hub, tenant_env, tmp_path):
    prefix = unique("v4").replace("-", "_") + "_"
    done = run([sys.executable, str(V4_AGENT), prefix], tenant_env, [SHIM.parent])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [""] * 8  # like v4's spacetime call: nothing on stdout

    doc, review, coordinator = (f"{prefix}{n}" for n in ("DocAgent", "ReviewAgent", "Coordinator"))
    with sqlite_hub.client(tenant_env["AGORA_API_KEY"]) as tenant:
        agents = {a: ok(call(tenant, "agora.agents.get", agent=a)) for a in (doc, review, coordinator)}
        assert agents[doc]["capabilities"] == ["documentation", "review"] and agents[doc]["metadata"]["proficiency"] == {"documentation": 80, "review": 60}
        assert agents[coordinator]["metadata"]["migration_source"] == "v4"  # it never registered: made as it first sent

        inbox = ok(call(tenant, "agora.messaging.receive", agent=review, limit=10, visibility_timeout=1))["messages"]
        got = [(m["from_agent"], m["message_type"], m["content"], m["priority"]) for m in inbox]
        assert got == [
            (agents[coordinator]["agent_id"], "announcement", "Standup in 5 minutes", "urgent"),
            (agents[doc]["agent_id"], "review_request", "Please review spec.md", "high"),
            (agents[coordinator]["agent_id"], "status_update", '{"sprint": 12, "state": "on track"}', "low"),
        ]
        task = ok(call(tenant, "agora.task.list", agent=review, task_type="review_document"))["tasks"][0]
        assert (task["task_type"], task["payload"], task["priority"]) == ("review_document", {"file": "spec.md"}, "urgent")
        workflow = ok(call(tenant, "agora.workflow.list"))["workflows"][0]
        status = ok(call(tenant, "agora.workflow.status", workflow_id=workflow["workflow_id"]))
        assert [(s["name"], s["agent"]) for s in status["steps"]] == [("write", agents[doc]["agent_id"]), ("review", agents[review]["agent_id"])]
        assert status["metadata"] == {"v4": {"creator_agent": coordinator}}

        keys = len(ok(call(tenant, "agora.admin.keys.list", limit=200))["keys"])
        again = run([str(SHIM), "call", "agora-marketplace", "send_agent_message", coordinator, doc, "info", "again", "2"], tenant_env, [SHIM.parent])
        assert again.returncode == 0 and again.stdout == "", again.stderr
        array = json.dumps([coordinator, doc, "info", "as one JSON array, as spacetime 0.x took them", 2])
        assert run([str(SHIM), "call", "agora-marketplace", "send_agent_message", array], tenant_env, [SHIM.parent]).returncode == 0
        assert len(ok(call(tenant, "agora.admin.keys.list", limit=200))["keys"]) == keys  # its token was kept, not minted again
        contents = [m["content"] for m in ok(call(tenant, "agora.messaging.receive", agent=doc, limit=10))["messages"]]
        assert contents == ["Standup in 5 minutes", "again", "as one JSON array, as spacetime 0.x took them"]
    assert oct((tmp_path / "tokens.json").stat().st_mode & 0o777) == "0o600"


def test_other_calls_go_to_the_real_spacetime_and_never_back_to_the_shim(tenant_env, real_spacetime, tmp_path):
    for args in (["publish", "my-module"], ["call", "other-db", "do_thing", "1"], ["call", "agora-marketplace", "some_other_reducer"]):
        passed = run([str(SHIM), *args], tenant_env, [SHIM.parent, real_spacetime])
        assert passed.returncode == 7 and passed.stdout == f"real spacetime: {' '.join(args)}\n", passed.stderr

    second_copy = tmp_path / "another-venv-bin"  # another installed copy of the shim, further along PATH
    second_copy.mkdir()
    shutil.copy(SHIM, second_copy / "spacetime")
    lost = run([str(SHIM), "sql", "agora-marketplace", "SELECT 1"], tenant_env, [SHIM.parent, second_copy])
    assert lost.returncode == 127 and "there is no real spacetime" in lost.stderr, lost.stderr

    helped = run([str(SHIM), "agora"], tenant_env, [SHIM.parent, real_spacetime])
    assert helped.returncode == 0 and "send_agent_message(from_agent: String" in helped.stdout
    assert f"the real spacetime: {real_spacetime / 'spacetime'}" in helped.stdout and "AGORA_SPACETIME_TOKENS" in helped.stdout


def test_failures_look_like_spacetimes(sqlite_hub, tenant_env):
    shim = [str(SHIM), "call", "agora-marketplace"]
    short = run([*shim, "send_agent_message", "a", "b", "c"], tenant_env, [SHIM.parent])
    assert short.returncode == 1 and short.stderr.startswith("Error: Invalid arguments provided for reducer `send_agent_message`")
    assert "5 parameters were expected, but 3 were provided." in short.stderr and short.stdout == ""
    wrong = run([*shim, "assign_task", "x", "t", "{}", "high"], tenant_env, [SHIM.parent])
    assert wrong.returncode == 1 and "priority must be a u8" in wrong.stderr
    nobody = run([*shim, "send_agent_message", unique("v4"), unique("nobody"), "info", "hi", "2"], tenant_env, [SHIM.parent])
    assert nobody.returncode == 1 and "Error: not_found: no agent" in nobody.stderr, nobody.stderr
    down = run([*shim, "register_agent_capability", "a", "b", "1", "1"], {**tenant_env, "AGORA_URL": f"http://127.0.0.1:{free_port()}"}, [SHIM.parent])
    assert down.returncode == 1 and "Error: unavailable: cannot reach the hub" in down.stderr, down.stderr
    flag = run([*shim, "register_agent_capability", "--agora-url", sqlite_hub.url, unique("v4"), "b", "1", "1"], {**tenant_env, "AGORA_URL": "http://127.0.0.1:1"}, [SHIM.parent])
    assert flag.returncode == 0, flag.stderr  # the flag wins over the variable
