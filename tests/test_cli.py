"""The ``agora`` command through its real entry point: output, --json and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import call, ok, unique
from .hubproc import free_port


def agora(*args: str, hub=None, key: str | None = None, data_dir=None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env["COLUMNS"] = "200"
    if hub is not None:
        env["AGORA_URL"] = hub.url
        env["AGORA_DATA_DIR"] = str(data_dir or hub.data_dir)
    if key:
        env["AGORA_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "agora", *args], capture_output=True, text=True, timeout=60, env=env)


def test_version_and_help():
    out = agora("version")
    assert out.returncode == 0 and out.stdout.startswith("agora ")
    serve_help = agora("serve", "--help").stdout
    for flag, env in (("--port", "AGORA_PORT"), ("--database-url", "AGORA_DATABASE_URL"), ("--log-level", "AGORA_LOG_LEVEL")):
        assert flag in serve_help and env in serve_help


def test_keys_lifecycle_with_the_local_admin_key(sqlite_hub):
    created = json.loads(agora("keys", "create", "--kind", "customer", "--tenant", unique("cli"), "--json", hub=sqlite_hub).stdout)
    assert created["key"].startswith("agora_sk_")
    key_id = created["info"]["key_id"]
    listed = json.loads(agora("keys", "list", "--json", hub=sqlite_hub).stdout)
    assert key_id in {k["key_id"] for k in listed["keys"]}
    assert all("key" not in k for k in listed["keys"])
    human = agora("keys", "list", hub=sqlite_hub)
    assert human.returncode == 0 and key_id in human.stdout
    revoked = agora("keys", "revoke", key_id, hub=sqlite_hub)
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert agora("keys", "revoke", "key_0000000000000000", hub=sqlite_hub).returncode == 2


def test_agents_ls_and_show(sqlite_hub):
    name = unique("cli-agent")
    with sqlite_hub.client() as admin:
        ok(call(admin, "agora.agents.register", agent_name=name, capabilities=["cli-test"]))
    listed = agora("agents", "ls", "-c", "cli-test", hub=sqlite_hub)
    assert listed.returncode == 0 and name in listed.stdout
    shown = json.loads(agora("agents", "show", name, "--json", hub=sqlite_hub).stdout)
    assert shown["agent_name"] == name
    missing = agora("agents", "show", "no-such-agent", hub=sqlite_hub)
    assert missing.returncode == 2 and "not_found" in missing.stderr


def test_health_and_friendly_errors(sqlite_hub, tmp_path):
    assert agora("health", hub=sqlite_hub).returncode == 0
    assert json.loads(agora("health", "--json", hub=sqlite_hub).stdout)["components"]["database"]["status"] == "healthy"
    bad_key = agora("health", hub=sqlite_hub, key="agora_sk_nope")
    assert bad_key.returncode == 4 and "not authenticated" in bad_key.stderr and "Traceback" not in bad_key.stderr
    env_down = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env_down.update(AGORA_URL=f"http://127.0.0.1:{free_port()}", AGORA_API_KEY="agora_sk_x")
    down = subprocess.run([sys.executable, "-m", "agora", "health"], capture_output=True, text=True, timeout=60, env=env_down)
    assert down.returncode == 3 and "hub unavailable" in down.stderr and "Traceback" not in down.stderr
