"""The official MCP conformance suite against a hub started with --mcp-conformance-fixtures, for both revisions.

Needs ``npx`` (Node's npm; ``-p node@22`` brings the Node version the suite needs). Without it the test is skipped,
except under ``AGORA_REQUIRE_SERVICES=1`` (CI), where it must run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import REQUIRE_SERVICES
from .hubproc import HubProcess

SUITE = "@modelcontextprotocol/conformance@0.2.0-alpha.12"
SUITE_TIMEOUT = 600


@pytest.fixture(scope="module")
def fixtures_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    # The suite's clients are anonymous and fire hundreds of requests a second from one address: no limit on that.
    extra = ["--mcp-conformance-fixtures", "--rate-limit", "anonymous=off"]
    hub = HubProcess(tmp_path_factory.mktemp("conformance-hub"), extra_args=extra).start()
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
def test_every_scored_conformance_scenario_passes(fixtures_hub, revision, tmp_path):
    command = [_npx(), "-y", "-p", "node@22", "-p", SUITE, "conformance", "server", "--url", f"{fixtures_hub.url}/mcp",
               "--requirements", revision, "-o", str(tmp_path / "results")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=SUITE_TIMEOUT)
    summary = done.stdout[done.stdout.find("=== SUMMARY ===") :]
    assert done.returncode == 0, f"conformance {revision} failed:\n{summary or done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    scored = _scored(summary)
    assert scored and all(failed == 0 for _, failed in scored.values()), summary
    print(f"MCP conformance {revision}: {len(scored)} scored scenarios, {sum(p for p, _ in scored.values())} checks passed")


def _scored(summary: str) -> dict[str, tuple[int, int]]:
    """Scenario -> (checks passed, failed) for the scenarios the suite scores (not extensions, not pending)."""
    unscored = set(re.findall(r"^\s+[✓✗] (\S+) \((?:extension|pending|added-after-release)\)", summary, re.M))
    rows = re.findall(r"^[✓✗] (\S+): (\d+) passed, (\d+) failed", summary, re.M)
    return {name: (int(p), int(f)) for name, p, f in rows if name not in unscored}


def test_the_fixtures_flag_is_refused_off_loopback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "agora", "serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path), "--mcp-conformance-fixtures"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2 and "loopback" in done.stderr, done.stderr


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
    assert refused["result"]["isError"] and refused["result"]["structuredContent"]["error"]["code"] == "permission_denied"


def test_conformance_module_is_not_imported_by_a_normal_hub():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, agora.app; from agora.config import Settings; agora.app.create_app(Settings(data_dir=__import__('pathlib').Path('unused'))); "
         "print('agora.transports.mcp.conformance' in sys.modules)"],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    assert done.stdout.strip() == "False", done.stderr
