"""Every example and adapted seed-000 example runs as a script against a real hub and does what it says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agora_sdk import AgoraClient

from .hubproc import HubProcess

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def fresh_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub of this module's own: the seed examples use fixed agent names."""
    hub = HubProcess(tmp_path_factory.mktemp("examples")).start()
    yield hub
    hub.stop()


def example_env(hub: HubProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return {**env, "AGORA_URL": hub.url, "AGORA_DATA_DIR": str(hub.data_dir)}


def run_example(hub: HubProcess, path: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / path), *args], capture_output=True, text=True, timeout=60, env=example_env(hub)
    )
    assert done.returncode == 0, f"{path} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def admin(hub: HubProcess) -> AgoraClient:
    return AgoraClient(hub.url, hub.admin_key)


def test_seed_quickstart_and_onboarding_steps(fresh_hub):
    with admin(fresh_hub) as a:
        a.agents.register("DocSystemAgent")  # the seed's examples write to it
        run_example(fresh_hub, "seed/quickstart.py")
        out = run_example(fresh_hub, "seed/onboarding_steps.py")
        assert "Registered with ID: agent_" in out and "Ready to use" in out and "documentation agents" in out
        inbox = [m.content for m in a.messaging.receive(agent="DocSystemAgent", limit=10)]
        assert "Hello from v5!" in inbox and "Hello! I'm a new documentation agent ready to help." in inbox
        assigned = {t.task_type: t for t in a.task.list(limit=100)}
        assert assigned["review_document"].payload == {"file": "spec.md"}
        assert assigned["documentation_review"].assignee == a.agents.get("MyDocumentationAgent").agent_id
        assert {"MyAgent", "MyDocumentationAgent"} <= {x.agent_name for x in a.query.agents(capabilities=["documentation"])}


def test_seed_basic_usage_starts_the_data_pipeline_workflow(fresh_hub):
    with admin(fresh_hub) as a:
        a.agents.register("DataTeam")
        out = run_example(fresh_hub, "seed/basic_usage.py")
        workflow_id = out.split("Workflow created: ")[1].split()[0]
        status = a.workflow.status(workflow_id)
    assert "Registration: agent_" in out and "Message sent: msg_" in out and "Found 1 data analysis agents" in out
    assert status.workflow_name == "data_pipeline" and [s.name for s in status.steps] == ["extract", "transform", "load"]
    assert [s.state for s in status.steps] == ["running", "pending", "pending"]  # DataExtractor has its task waiting


def test_seed_service_discovery_and_complete_example(fresh_hub):
    out = run_example(fresh_hub, "seed/service_discovery.py")
    with admin(fresh_hub) as a:
        total = len(a.discovery.list())
    assert out.startswith(f"{total} services") and "agora.messaging.send" in out
    out = run_example(fresh_hub, "seed/complete_example.py")
    assert "services available" in out and "Marketplace status: healthy" in out and "Onboarding complete" in out


def test_seed_documentation_agent_processes_its_pending_tasks(fresh_hub):
    with admin(fresh_hub) as a:
        a.agents.register("DocumentationAgent", capabilities=["documentation"])
        task = a.task.assign("documentation_update", {"page": "intro.md"}, assignee="DocumentationAgent")
        run_example(fresh_hub, "seed/documentation_agent.py")
        done = a.task.get(task.task_id)
        assert done.status == "completed" and done.progress == 100
        assert done.notes == "Completed: Documentation updated successfully"
        assert [t.to_status for t in a.task.history(task.task_id)] == ["pending", "in_progress", "completed"]
        assert a.agents.get("DocumentationAgent").service_tier == "premium"


def test_pipeline_and_request_reply_examples(fresh_hub):
    assert "loaded: ONE, TWO, THREE" in run_example(fresh_hub, "pipeline.py", "one,two,three")
    with admin(fresh_hub) as a:
        stages = {t.task_type: t.status for t in a.task.list(limit=200) if t.task_type in ("extract", "transform", "load")}
    assert stages == {"extract": "completed", "transform": "completed", "load": "completed"}
    assert "inform: gadget costs 24.0" in run_example(fresh_hub, "request_reply.py", "gadget")


def test_echo_agent_answers_then_stops_on_sigterm(fresh_hub):
    started = time.perf_counter()
    agent = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "echo_agent.py")], env=example_env(fresh_hub),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        with admin(fresh_hub) as a:
            asker = a.agents.register("EchoAsker")
            with AgoraClient(fresh_hub.url, asker.agent_token) as me:
                wait_until(lambda: any(x.agent_name == "EchoAgent" for x in me.query.agents(capabilities=["echo"])))
                me.messaging.send("EchoAgent", "ping?")
                reply = me.messaging.receive(wait=20)
                assert len(reply) == 1 and reply[0].content == {"echo": "ping?"}, reply
                assert reply[0].correlation and reply[0].correlation["reply_to"]
                answered = time.perf_counter() - started
                task = me.task.assign("echo", {"x": 1}, assignee="EchoAgent")
                wait_until(lambda: me.task.get(task.task_id).status == "completed")
                assert me.task.get(task.task_id).result == {"x": 1}
        assert answered < 20
    finally:
        agent.send_signal(signal.SIGTERM)
        out, _ = agent.communicate(timeout=30)
    assert agent.returncode == 0, out
    assert "stopped" in out


def readme_snippet(marker: str) -> str:
    """The code block that follows ``<!-- marker -->`` in the README."""
    text = (EXAMPLES.parent / "README.md").read_text()
    after = text.split(f"<!-- {marker} -->", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_quickstart_runs_as_written(fresh_hub, tmp_path):
    script = tmp_path / "quickstart.py"
    script.write_text(readme_snippet("quickstart:python"))
    agent = subprocess.Popen([sys.executable, str(EXAMPLES / "echo_agent.py")], env=example_env(fresh_hub))
    try:
        with admin(fresh_hub) as a:
            wait_until(lambda: any(x.agent_name == "EchoAgent" for x in a.query.agents(capabilities=["echo"], status="active")))
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, env=example_env(fresh_hub))
    finally:
        agent.terminate()
        agent.wait(30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["{'echo': 'hello'}", "{'n': 42}"]
