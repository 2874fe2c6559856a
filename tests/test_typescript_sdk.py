"""The TypeScript SDK (``sdk/typescript``): its generated code is current, and its own tests pass with Node's test
runner against real hubs they start (``python -m agora serve`` with this interpreter).

Needs Node 20+ and npm. Without them the Node tests are skipped, except under ``AGORA_REQUIRE_SERVICES=1`` (CI), where
they must run. ``npm ci`` installs the package's locked dependencies once into ``sdk/typescript/node_modules`` (again
only when the lock file changes).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agora.catalog import tsgen

from .conftest import REQUIRE_SERVICES

PACKAGE = Path(__file__).resolve().parents[1] / "sdk" / "typescript"
INSTALLED = PACKAGE / "node_modules" / ".agora-lock-sha256"  # the lock file npm ci last installed
NODE_TESTS_TIMEOUT = 240


def test_generated_code_is_current():
    """A tool added or changed without regenerating the TypeScript SDK fails here."""
    assert not tsgen.stale(tsgen.render()), "run: python -m agora.catalog.tsgen"


def _npm() -> str:
    npm, node = shutil.which("npm"), shutil.which("node")
    reason = None
    if npm is None or node is None:
        reason = "Node and npm are not installed: the TypeScript SDK's tests cannot run"
    else:
        version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        if int(version.lstrip("v").split(".")[0]) < 20:
            reason = f"the TypeScript SDK needs Node 20 or later, not {version}"
    if reason is not None:
        if REQUIRE_SERVICES:
            pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    assert npm is not None
    return npm


def _installed(npm: str) -> None:
    lock = hashlib.sha256((PACKAGE / "package-lock.json").read_bytes()).hexdigest()
    if INSTALLED.exists() and INSTALLED.read_text() == lock:
        return
    done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=PACKAGE, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    INSTALLED.write_text(lock)


def test_node_tests_pass_against_real_hubs():
    npm = _npm()
    _installed(npm)
    built = subprocess.run([npm, "run", "build"], cwd=PACKAGE, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"the TypeScript build failed:\n{built.stdout[-4000:]}\n{built.stderr[-2000:]}"
    env = {**os.environ, "AGORA_TEST_PYTHON": sys.executable}
    files = sorted(str(f.relative_to(PACKAGE)) for f in (PACKAGE / "build" / "test").glob("*.test.js"))
    done = subprocess.run(
        ["node", "--test", "--test-reporter=spec", *files], cwd=PACKAGE, env=env, capture_output=True, text=True,
        timeout=NODE_TESTS_TIMEOUT,
    )  # fmt: skip
    counts = dict(re.findall(r"^ℹ (tests|pass|fail|skipped|cancelled) (\d+)$", done.stdout, re.M))
    assert done.returncode == 0, f"node --test failed:\n{done.stdout[-8000:]}\n{done.stderr[-2000:]}"
    assert int(counts.get("pass", 0)) > 0 and counts.get("fail") == "0", done.stdout[-3000:]
    print(f"TypeScript SDK: {counts['pass']} Node tests passed")
