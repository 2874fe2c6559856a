"""storecopy: a store of 1,000,000 messages backed up (time, size) and copied to the other engine (rows/s).

The store is built straight through the store's own operations (``message_ops.send`` in batches, as the hub's send
path stores a batch), not a million HTTP calls: 100 agents of one tenant, each message direct to one of them with a
small JSON content, so a message is two rows (``messages`` and its ``inbox`` delivery). Built on SQLite; the
PostgreSQL run first copies it there. Each figure is one run of the command a user runs (``agora backup``,
``agora store copy``) in a subprocess, timed from spawn to exit, with the command's own figures in the notes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from agora.core.ids import new_id
from agora.core.services.agents import register_in, stored_fields
from agora.maintenance.endpoints import StoreLocation, open_endpoint, run as in_greenlet
from agora.store.ops import messages as message_ops
from agora_sdk.wire.agents import RegisterAgent

from ..bench import Bench
from ..report import ValueRecord
from ..servers import ROOT
from ..stores import StoreProvider

NAME = "storecopy"
AGENTS = 100
BATCH = 5_000  # messages per send (one sender each)
COMMIT_EVERY = 100_000  # messages per transaction while building


def _message(tenant_id: str, sender: str, recipient: str, n: int, now: datetime) -> dict[str, Any]:
    return {
        "message_id": new_id("msg"), "tenant_id": tenant_id, "kind": "direct", "sender_id": sender, "recipient_id": recipient,
        "topic": None, "message_type": "status_update", "performative": "inform", "intent": None, "priority": 1 + n % 4,
        "content": {"n": n, "text": f"build {n} passed", "checks": [n % 7, n % 11]}, "correlation": None,
        "conversation_id": None, "expected": None, "context": {}, "idempotency_key": None, "created_at": now,
        "expires_at": None, "reply_due_at": None,
    }  # fmt: skip


def _build(conn: Connection, messages: int, progress: Any, at: datetime | None = None) -> None:
    now = at or datetime.now(timezone.utc)
    agents = [
        register_in(conn, "default", stored_fields(RegisterAgent(agent_name=f"bench-{i}", capabilities=["build"])), now, None, None, [], "bench")[0]["agent_id"]
        for i in range(AGENTS)
    ]  # fmt: skip
    for start in range(0, messages, BATCH):
        sender = agents[(start // BATCH) % AGENTS]
        rows = [_message("default", sender, agents[n % AGENTS], n, now) for n in range(start, min(messages, start + BATCH))]
        message_ops.send(conn, "default", sender, rows, now)
        if (start + BATCH) % COMMIT_EVERY == 0:
            conn.commit()
        progress(len(rows))
    conn.commit()


def build_store(bench: Bench, path: Path, messages: int, at: datetime | None = None) -> float:
    """A SQLite store at ``path`` with ``messages`` messages (sent ``at``, default now); the seconds it took."""
    from rich.progress import Progress

    started = time.perf_counter()
    location = StoreLocation.sqlite(path)

    async def go(advance: Any) -> None:
        async with open_endpoint(location) as endpoint:
            await in_greenlet(endpoint.upgrade)
            await in_greenlet(_build, endpoint.conn, messages, advance, at)

    with Progress(console=bench.console, transient=True) as bar:
        task = bar.add_task(f"building {messages:,} messages", total=messages)
        asyncio.run(go(lambda n: bar.advance(task, n)))
    return time.perf_counter() - started


def agora(*args: str | Path) -> tuple[float, dict[str, Any]]:
    """Run an ``agora`` command with --json; (seconds from spawn to exit, what it printed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "agora", *map(str, args), "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"agora {' '.join(map(str, args))} failed: {done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def _mib(size: int) -> float:
    return size / 2**20


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    messages = bench.profile.store_messages
    kind = store.kind.value
    spec = store.fresh()  # with PostgreSQL: a new database, the copy's target
    work = spec.data_dir
    source = work / "source" / "agora.db"
    bench.step(f"{NAME}: building a SQLite store of {messages:,} messages through the store's operations")
    built = build_store(bench, source, messages)
    rows = messages * 2
    bench.add(ValueRecord(NAME, kind, f"build {messages:,} messages (store ops)", built, "s", notes=f"{rows / built:,.0f} rows/s"))
    measured = StoreLocation.sqlite(source)
    if spec.database_url is not None:
        target = spec.database_url
        bench.step(f"{NAME}: agora store copy, SQLite → PostgreSQL")
        _copy_record(bench, kind, "SQLite → PostgreSQL", *agora("store", "copy", "--from", measured.url, "--to", target))
        measured = StoreLocation(target)
        bench.step(f"{NAME}: agora store copy, PostgreSQL → SQLite")
        back = work / "back" / "agora.db"
        _copy_record(bench, kind, "PostgreSQL → SQLite", *agora("store", "copy", "--from", target, "--to", StoreLocation.sqlite(back).url))
        _pg_dump(bench, kind, target, work)
    else:
        bench.step(f"{NAME}: agora backup (SQLite backup API)")
        _backup_record(bench, kind, "sqlite", *agora("backup", work / "backup.db", "--data-dir", source.parent))
        bench.step(f"{NAME}: agora restore of that backup into a new data directory")
        seconds, _ = agora("restore", work / "backup.db", "--data-dir", work / "restored")
        bench.add(ValueRecord(NAME, kind, "restore (sqlite backup)", seconds, "s", notes="the file placed beside the store, renamed in"))
    bench.step(f"{NAME}: agora backup --format logical")
    logical = work / "backup.jsonl.gz"
    _backup_record(bench, kind, "logical", *agora("backup", logical, "--database-url", measured.url, "--format", "logical"))
    shutil.rmtree(work, ignore_errors=True)


def _copy_record(bench: Bench, kind: str, label: str, seconds: float, printed: dict[str, Any]) -> None:
    rows = sum(t["rows"] for t in printed["tables"].values())
    bench.add(
        ValueRecord(
            NAME, kind, f"store copy {label}", rows / seconds, "rows/s",
            notes=f"{rows:,} rows in {seconds:.1f} s (spawn to exit; copy and verify {printed['seconds']:.1f} s, "
            f"{printed['rows_per_second']:,} rows/s)",
        )
    )  # fmt: skip


def _backup_record(bench: Bench, kind: str, fmt: str, seconds: float, printed: dict[str, Any]) -> None:
    bench.add(ValueRecord(NAME, kind, f"backup ({fmt}) time", seconds, "s", notes=f"the command's own: {printed['seconds']:.1f} s"))
    bench.add(ValueRecord(NAME, kind, f"backup ({fmt}) size", _mib(printed["bytes"]), "MiB"))


def _pg_dump(bench: Bench, kind: str, url: str, work: Path) -> None:
    """pg_dump's custom format of the same database, beside Agora's logical backup (when pg_dump is installed)."""
    if shutil.which("pg_dump") is None:
        bench.step(f"{NAME}: no pg_dump on PATH: its figures are left out")
        return
    dump = work / "agora.dump"
    started = time.perf_counter()
    subprocess.run(["pg_dump", "--format=custom", "--file", str(dump), url], check=True, timeout=3600)
    seconds = time.perf_counter() - started
    bench.add(ValueRecord(NAME, kind, "pg_dump --format=custom time", seconds, "s"))
    bench.add(ValueRecord(NAME, kind, "pg_dump --format=custom size", _mib(dump.stat().st_size), "MiB"))
