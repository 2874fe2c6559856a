"""The official MCP conformance suite against a hub serving its fixtures (``tests/mcp_fixtures.py``), for both revisions.

Needs ``npx`` (Node's npm; ``-p node@22`` brings the Node version the suite needs). Without it the test is skipped,
except under ``AGORA_REQUIRE_SERVICES=1`` (CI), where it must run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import REQUIRE_SERVICES
from .hubproc import HubProcess

SUITE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
SUITE_TIMEOUT = 600
FIXTURES = "tests.mcp_fixtures:ConformanceFixtures"
REPO_ON_PATH = {"PYTHONPATH": str(Path(__file__).parent.parent)}  # so the hub can import the fixtures


@pytest.fixture(scope="module")
def fixtures_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    # The suite's clients are anonymous and fire hundreds of requests a second from one address: no limit on that.
    extra = ["--mcp-extension", FIXTURES, "--rate-limit", "anonymous=off"]
    hub = HubProcess(tmp_path_factory.mktemp("conformance-hub"), extra_args=extra, env=REPO_ON_PATH).start()
    yield hub
    hub.stop()


def _npx() -> str:
    npx = shutil.which("npx")
    if npx is None:
        reason = "npx (Node's npm) is not installed: the MCP conformance suite cannot run"
        if REQUIRE_SERVICES:
            pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return npx


@pytest.mark.parametrize("revision", ["2025-11-25", "2026-07-28"])
def test_every_conformance_scenario_passes(fixtures_hub, revision, tmp_path):
    command = [_npx(), "-y", "-p", "node@22", "-p", SUITE, "conformance", "server", "--url", f"{fixtures_hub.url}/mcp",
               "--requirements", revision, "-o", str(tmp_path / "results")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, f"conformance {revision} failed:\n{summary or done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    scenarios = _scenarios(summary)
    failed = [c for c in _checks(tmp_path / "results") if c["status"] == "FAILURE"]
    assert scenarios and not failed, f"{summary}\n{failed}"
    print(f"MCP conformance {revision}: {len(scenarios)} scenarios, {sum(p for p, _ in scenarios.values())} checks passed")


def _checks(results: Path) -> list[dict[str, Any]]:
    """Every check the suite recorded (each scenario writes its own checks.json under ``results``)."""
    return [check for path in sorted(results.glob("*/checks.json")) for check in json.loads(path.read_text())]


def _scenarios(summary: str) -> dict[str, tuple[int, int]]:
    """Scenario -> (checks passed, failed), scored or not (extensions, pending)."""
    rows = re.findall(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", summary, re.M)
    return {name: (int(p), int(f)) for name, p, f in rows}


@pytest.mark.parametrize(("spec", "host", "refusal"), [
    (FIXTURES, "0.0.0.0", "loopback"),  # anonymous callers only on loopback
    ("tests.mcp_fixtures:NoSuchThing", "127.0.0.1", "cannot load"),
    ("tests.mcp_fixtures", "127.0.0.1", "module:attribute"),
])  # fmt: skip
def test_a_bad_or_unsafe_extension_is_refused(tmp_path, spec, host, refusal):
    done = subprocess.run(
        [sys.executable, "-m", "agora", "serve", "--host", host, "--data-dir", str(tmp_path), "--mcp-extension", spec],
        capture_output=True, text=True, timeout=60, env={**os.environ, **REPO_ON_PATH},
    )  # fmt: skip
    assert done.returncode == 2 and refusal in done.stderr, done.stderr


def test_a_normal_hub_has_no_fixtures_and_no_anonymous_mcp(sqlite_hub, fixtures_hub):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}
    headers = {"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"}
    assert httpx.post(f"{sqlite_hub.url}/mcp", json=body, headers=headers).status_code == 401
    normal = httpx.post(f"{sqlite_hub.url}/mcp", json=body, headers=headers | {"Authorization": f"Bearer {sqlite_hub.admin_key}"}).json()
    assert not [t for t in normal["result"]["tools"] if t["name"].startswith("test_")]
    anonymous = httpx.post(f"{fixtures_hub.url}/mcp", json=body, headers=headers).json()
    names = [t["name"] for t in anonymous["result"]["tools"]]
    assert "test_simple_text" in names and "agora.messaging.send" in names
    # The anonymous caller reaches the fixtures only: every catalog tool that needs a right refuses it.
    call = {**body, "method": "tools/call", "params": {**body["params"], "name": "agora.agents.register", "arguments": {"agent_name": "x"}}}
    refused = httpx.post(f"{fixtures_hub.url}/mcp", json=call, headers=headers | {"Mcp-Method": "tools/call", "Mcp-Name": "agora.agents.register"}).json()
    assert refused["result"]["isError"] and refused["result"]["_meta"]["agora/error"]["code"] == "permission_denied"


def test_a_missing_resource_is_invalid_params_naming_it(fixtures_hub):
    """SEP-2164: resources/read of an unknown URI is -32602 with data.uri, for the fixtures and the catalog's own."""
    for uri in ("test://no-such-resource", "agora://agents/agent_doesnotexist"):
        body = {"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}}
        headers = {"Accept": "application/json, text/event-stream", "Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/read", "Mcp-Name": uri}
        error = httpx.post(f"{fixtures_hub.url}/mcp", json=body, headers=headers).json()["error"]
        assert error["code"] == -32602 and error["data"] == {"uri": uri}, error


def test_the_fixtures_are_not_in_the_product():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, agora.app; from agora.config import Settings; agora.app.create_app(Settings(data_dir=__import__('pathlib').Path('unused'))); "
         "print(any('fixtures' in name or 'conformance' in name for name in sys.modules))"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr
