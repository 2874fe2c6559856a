"""The ``agora`` command through its real entry point (the installed console script): output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

from .conftest import unique
from .hubproc import HubProcess, free_port

AGORA = str(Path(sys.executable).parent / "agora")


def _env(hub: HubProcess, key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    env |= {"AGORA_URL": hub.url, "AGORA_API_KEY": key or hub.admin_key, "COLUMNS": "200"}
    return env


def agora(hub: HubProcess, *args: str, key: str | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AGORA, *args], env=_env(hub, key), input=stdin, capture_output=True, text=True, timeout=60)


def agora_json(hub: HubProcess, *args: str, key: str | None = None) -> Any:
    done = agora(hub, *args, "--json", key=key)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def pair(sqlite_hub: HubProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    return agora_json(sqlite_hub, "agents", "register", unique("cli")), agora_json(sqlite_hub, "agents", "register", unique("cli"))


def test_agents_register_ls_show_in_tables_and_json(sqlite_hub):
    name = unique("cli")
    shown = agora(sqlite_hub, "agents", "register", name, "-c", "summarize", "-c", "translate", "--description", "reads things")
    assert shown.returncode == 0, shown.stderr
    assert f"registered {name}" in shown.stdout and "agent token (shown once" in shown.stdout
    token = shown.stdout.split("AGORA_API_KEY): ")[1].split()[0]
    listed = agora(sqlite_hub, "agents", "ls", "-c", "translate")
    assert listed.returncode == 0 and name in listed.stdout and "summarize, translate" in listed.stdout
    found = agora_json(sqlite_hub, "agents", "ls", "--text", name)
    assert [a["agent_name"] for a in found["agents"]] == [name]
    one = agora_json(sqlite_hub, "agents", "show", name, key=token)  # the agent's own token works too
    assert one["capabilities"] == ["summarize", "translate"] and one["description"] == "reads things"


def test_send_inbox_ack_and_a_progress_bar_batch(sqlite_hub, pair):
    alice, bob = pair
    sent = agora(sqlite_hub, "send", bob["agent_name"], "hello bob", "--type", "greeting", key=alice["agent_token"])
    assert sent.returncode == 0 and sent.stdout.startswith("queued msg_"), sent.stderr
    data = agora_json(sqlite_hub, "send", bob["agent_id"], '{"n": 1}', "--json-content", "--priority", "urgent", key=alice["agent_token"])
    looked = agora_json(sqlite_hub, "inbox", "--agent", bob["agent_id"])  # an admin names the agent
    assert looked["count"] == 2 and looked["messages"][0]["message_id"] == data["message_id"]  # urgent first
    assert looked["messages"][0]["content"] == {"n": 1} and looked["messages"][1]["from_agent"] == alice["agent_id"]
    assert agora_json(sqlite_hub, "inbox", key=bob["agent_token"])["count"] == 0  # not acked: hidden for 30 s, not gone
    acked = agora(sqlite_hub, "ack", *(m["message_id"] for m in looked["messages"]), key=bob["agent_token"])
    assert acked.returncode == 0 and acked.stdout.strip() == "acked 2 message(s)"
    agora(sqlite_hub, "send", bob["agent_name"], "[red]not markup", key=alice["agent_token"])
    table = agora(sqlite_hub, "inbox", "--ack", key=bob["agent_token"])
    assert "1 message(s)" in table.stdout and "[red]not markup" in table.stdout  # shown literally

    many = agora_json(sqlite_hub, "send", bob["agent_name"], "bulk", "--repeat", "1500", key=alice["agent_token"])
    assert many["count"] == 1500 and len({r["message_id"] for r in many["receipts"]}) == 1500
    takes = [agora_json(sqlite_hub, "inbox", "--ack", "--limit", "500", key=bob["agent_token"])["count"] for _ in range(3)]
    assert takes == [500, 500, 500]
    assert agora_json(sqlite_hub, "inbox", "--agent", bob["agent_id"])["count"] == 0


def test_call_reaches_any_tool_with_key_value_json_or_stdin(sqlite_hub, pair):
    alice, bob = pair
    by_pairs = agora(sqlite_hub, "call", "messaging.send", f"to_agent={bob['agent_id']}", "content=plain text", "context:={\"k\": [1]}", key=alice["agent_token"])
    assert by_pairs.returncode == 0, by_pairs.stderr
    receipt = json.loads(by_pairs.stdout)
    by_json = agora(sqlite_hub, "call", "agora.messaging.receive", "--json", json.dumps({"limit": 5}), key=bob["agent_token"])
    messages = json.loads(by_json.stdout)["messages"]
    assert [(m["message_id"], m["content"], m["context"]) for m in messages] == [(receipt["message_id"], "plain text", {"k": [1]})]
    by_stdin = agora(sqlite_hub, "call", "agora.messaging.ack", "--json", "-", stdin=json.dumps({"message_ids": [receipt["message_id"]]}), key=bob["agent_token"])
    assert json.loads(by_stdin.stdout) == {"acked": 1}


def test_tasks_assign_ls_show_cancel_requeue_stats(sqlite_hub, pair):
    kind = unique("kind")
    created = agora(sqlite_hub, "tasks", "assign", kind, "--payload", '{"url": "https://example.org"}', "--assignee", pair[0]["agent_name"])
    assert created.returncode == 0 and created.stdout.startswith("created: task_"), created.stderr
    task_id = created.stdout.split()[1]
    listed = agora_json(sqlite_hub, "tasks", "ls", "--type", kind)
    assert [t["task_id"] for t in listed["tasks"]] == [task_id] and listed["tasks"][0]["payload"] == {"url": "https://example.org"}
    assert task_id in agora(sqlite_hub, "tasks", "ls", "--type", kind).stdout
    cancelled = agora(sqlite_hub, "tasks", "cancel", task_id, "--reason", "not needed")
    assert cancelled.stdout.strip() == f"{task_id}: cancelled"
    shown = agora_json(sqlite_hub, "tasks", "show", task_id)
    assert [(t["to_status"], t["note"]) for t in shown["history"]][-1] == ("cancelled", "not needed")
    refused = agora(sqlite_hub, "tasks", "requeue", task_id)
    assert refused.returncode == 1 and "conflict" in refused.stderr and "Traceback" not in refused.stderr
    stats = agora_json(sqlite_hub, "tasks", "stats", "--type", kind)
    assert stats["by_status"] == {"cancelled": 1}
    assert f"{kind}" in agora(sqlite_hub, "tasks", "stats", "--type", kind).stdout


def test_tools_ls_schema_health_and_completion(sqlite_hub):
    tools = agora_json(sqlite_hub, "tools", "ls", "--category", "task")
    assert {"agora.task.assign", "agora.task.claim"} <= {t["name"] for t in tools["services"]}
    schema = agora_json(sqlite_hub, "tools", "schema", "task.cancel")
    assert schema["input_schema"]["required"] == ["task_id"]
    health = agora(sqlite_hub, "health")
    assert health.returncode == 0 and "database" in health.stdout and "healthy" in health.stdout
    env = _env(sqlite_hub, None) | {"_AGORA_COMPLETE": "complete_bash", "COMP_WORDS": "agora call agora.messaging.sen", "COMP_CWORD": "2"}
    completion = subprocess.run([AGORA], env=env, capture_output=True, text=True, timeout=30)
    assert completion.stdout.split() == ["agora.messaging.send", "agora.messaging.send_batch"]


def test_errors_are_one_line_with_exit_codes(sqlite_hub, pair):
    cases = [
        (agora(sqlite_hub, "agents", "ls", key="agora_sk_not-a-real-key"), 4, "unauthenticated"),
        (agora(sqlite_hub, "keys", "list", key=pair[0]["agent_token"]), 4, "permission_denied"),
        (agora(sqlite_hub, "call", "agora.messaging.send", "to_agent=x"), 2, "content: Field required"),
        (agora(sqlite_hub, "call", "agora.task.get", "task_id:=oops"), 2, "task_id:= takes JSON"),
        (agora(sqlite_hub, "call", "agora.task.get", "task_id"), 2, "is not key=value"),
        (agora(sqlite_hub, "call", "agora.nothing.here"), 1, "unknown tool"),
        (agora(sqlite_hub, "call", "agora.task.list", "--json", "{broken"), 2, "--json is not valid JSON"),
        (agora(sqlite_hub, "ack"), 2, "give message ids or --up-to"),
        (agora(sqlite_hub, "tasks", "show", "task_0000000000000000"), 1, "not_found"),
    ]
    for done, code, text in cases:
        assert (done.returncode, text in done.stderr, "Traceback" in done.stderr) == (code, True, False), done.stderr
    down = HubProcess(Path("unused"), port=free_port())
    started = time.monotonic()
    unreachable = agora(down, "health", key="agora_sk_x")
    assert unreachable.returncode == 3 and "cannot reach the hub" in unreachable.stderr
    assert time.monotonic() - started < 15


def _lines(proc: subprocess.Popen[str]) -> Queue[str]:
    lines: Queue[str] = Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    return lines


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _until_line(lines: Queue[str], poke: Any, timeout: float = 20) -> dict[str, Any]:
    """Poke the hub until the streaming command prints a line (it may still be connecting), then return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poke()
        try:
            return json.loads(lines.get(timeout=1))
        except Empty:
            continue
    raise AssertionError("the command printed nothing")


def test_tail_and_inbox_follow_stream_as_ndjson(sqlite_hub, pair, background):
    alice, bob = pair
    tail = subprocess.Popen([AGORA, "tail", "--json", "-t", "agent_registered"], env=_env(sqlite_hub, None), stdout=subprocess.PIPE, text=True)
    background.append(tail)
    tail_lines = _lines(tail)
    names: list[str] = []
    first = _until_line(tail_lines, lambda: names.append(agora_json(sqlite_hub, "agents", "register", unique("tail"))["agent_name"]))
    assert first["type"] == "agent_registered" and first["data"]["agent_name"] in names

    follow = subprocess.Popen([AGORA, "inbox", "--follow", "--ack", "--json"], env=_env(sqlite_hub, bob["agent_token"]), stdout=subprocess.PIPE, text=True)
    background.append(follow)
    follow_lines = _lines(follow)
    got = _until_line(follow_lines, lambda: agora(sqlite_hub, "send", bob["agent_id"], "followed", key=alice["agent_token"]))
    assert got["content"] == "followed" and got["from_agent"] == alice["agent_id"]


@pytest.mark.parametrize("command", ["serve", "host"])
def test_every_server_setting_is_a_flag_with_its_environment_variable_and_help(command: str):
    import typer.main

    from agora.cli.main import app

    options = typer.main.get_command(app).commands[command].params  # type: ignore[attr-defined]
    assert len(options) > 5
    for option in options:
        assert isinstance(option.envvar, str) and option.envvar.startswith("AGORA_"), option.name
        assert option.help and len(option.help) > 10, option.name
    assert len({option.envvar for option in options}) == len(options)  # one variable per setting
