"""Running the whole-store commands (``agora backup``, ``restore``, ``store copy``, ``store checksum``, ``import v4``) as
a user does, in a subprocess with only the environment a test gives."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from agora.maintenance.copy import checksum_store
from agora.maintenance.endpoints import StoreLocation


def agora(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return subprocess.run([sys.executable, "-m", "agora", *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env)


def agora_json(*args: str | Path) -> Any:
    done = agora(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def refused(out: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    """A refusal as the CLI gives one: the exit code, the words on stderr, no traceback."""
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and words in out.stderr, out.stderr


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.absolute()}"


def summary(store: str) -> dict[str, Any]:
    """What ``agora store checksum --json`` prints of a store (revision, tables: rows and digest, sequences), computed in
    this process: a test compares many stores, and the command itself is tested once."""
    return asyncio.run(checksum_store(StoreLocation.parse(store))).to_json()


def rows(found: dict[str, Any]) -> dict[str, int]:
    return {name: t["rows"] for name, t in found["tables"].items() if t["rows"]}
