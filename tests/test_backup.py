"""``agora backup`` and ``agora restore`` on real hubs: a backup taken while an agent keeps sending is one instant of
the store (every message acknowledged before it began, and no gap), it restores to an identical store (counts and
checksums) that a hub serves; a PostgreSQL hub's logical backup restores into SQLite; what must be refused is."""

from __future__ import annotations

import gzip
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import call, fresh_postgres_url, ok, unique, until
from .hubproc import HubProcess
from .store_cli import agora, agora_json, refused, sqlite_url, summary

PADDING = "x" * 400  # a few MB of store, so the backup takes many steps while the writer commits between them


class Writer:
    """An agent sending numbered messages one by one; ``acked`` counts those the hub acknowledged."""

    def __init__(self, hub: HubProcess, token: str, recipient: str):
        self.hub, self.token, self.recipient = hub, token, recipient
        self.acked = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.hub.client(self.token) as client:
            while not self._stop.is_set():
                ok(call(client, "agora.messaging.send", to_agent=self.recipient, content={"n": self.acked, "pad": PADDING}))
                self.acked += 1

    @contextmanager
    def running(self) -> Iterator[Writer]:
        self._thread.start()
        try:
            until(lambda: self.acked >= 20, "the writer did not get going")
            yield self
        finally:
            self._stop.set()
            self._thread.join(30)


def sender_and_recipient(hub: HubProcess, bulk: int) -> tuple[str, str, str]:
    """A sender (its token), a recipient, and ``bulk`` messages already sent, as a tenant of its own."""
    with hub.client() as admin:
        sender, recipient = unique("sender"), unique("recipient")
        token = ok(call(admin, "agora.agents.register", agent_name=sender))["agent_token"]
        ok(call(admin, "agora.agents.register", agent_name=recipient))
    with hub.client(token) as client:
        for _ in range(bulk // 500):
            ok(call(client, "agora.messaging.send_batch", messages=[{"to_agent": recipient, "content": {"bulk": True, "pad": PADDING}}] * 500))
    return token, sender, recipient


def numbers_in(database: Path, sender_name: str) -> list[int]:
    """The numbers of the writer's messages a SQLite store holds, in seq order."""
    with sqlite3.connect(database) as conn:
        found = conn.execute(
            "SELECT json_extract(m.content, '$.n') FROM messages m JOIN agents a ON a.agent_id = m.sender_id "
            "WHERE a.agent_name = ? AND json_extract(m.content, '$.n') IS NOT NULL ORDER BY m.seq",
            (sender_name,),
        )
        return [row[0] for row in found]


def test_a_backup_under_write_load_is_one_instant_and_restores_to_an_identical_store(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    backup = tmp_path / "agora-backup.db"
    try:
        token, sender, recipient = sender_and_recipient(hub, bulk=5_000)
        with Writer(hub, token, recipient).running() as writer:
            acked_before = writer.acked
            agora_json("backup", backup, "--data-dir", hub.data_dir, "--pages-per-step", "8")
            acked_during = writer.acked - acked_before
            until(lambda: writer.acked >= acked_before + acked_during + 5, "the writer stopped after the backup")
        assert acked_during > 0, "the writer never committed while the backup ran"
    finally:
        hub.stop()
    numbers = numbers_in(backup, sender)
    assert numbers == list(range(len(numbers))), "the backup holds a gap: it is not one instant"
    assert acked_before <= len(numbers) < writer.acked  # everything acknowledged before it began, not what came after
    with sqlite3.connect(backup) as conn:  # and each of those messages with its delivery (same transaction, same instant)
        assert conn.execute("SELECT count(*) FROM inbox").fetchone()[0] == conn.execute("SELECT count(*) FROM messages").fetchone()[0]

    restored = tmp_path / "restored"
    out = agora("restore", backup, "--data-dir", restored)
    assert out.returncode == 0 and "restored" in out.stdout, out.stderr
    assert summary(sqlite_url(restored / "agora.db")) == summary(sqlite_url(backup))
    again = HubProcess(restored).start()  # its own admin key: the store is the backup's
    try:
        with again.client() as admin:
            depth = ok(call(admin, "agora.agents.get", agent=recipient, include_counts=True))["inbox_depth"]
    finally:
        again.stop()
    assert depth == 5_000 + len(numbers)


def test_a_postgres_hubs_logical_backup_under_load_restores_into_sqlite(tmp_path, postgres_url):
    hub = HubProcess(tmp_path / "hub", database_url=fresh_postgres_url(postgres_url)).start()
    backup = tmp_path / "agora.backup.gz"
    try:
        token, sender, recipient = sender_and_recipient(hub, bulk=1_000)
        with Writer(hub, token, recipient).running() as writer:
            acked_before = writer.acked
            made = agora_json("backup", backup, "--database-url", hub.database_url)
            time.sleep(0.2)
    finally:
        hub.stop()
    assert made["format"] == "logical" and made["tables"]["messages"]["rows"] >= 1_000 + acked_before

    restored = tmp_path / "restored"
    assert agora_json("restore", backup, "--data-dir", restored)["tables"] == made["tables"]
    numbers = numbers_in(restored / "agora.db", sender)
    assert numbers == list(range(len(numbers))) and acked_before <= len(numbers) <= writer.acked
    printed = agora_json("store", "checksum", backup)  # the file read back against its own summary
    assert {k: printed[k] for k in ("revision", "tables", "sequences")} == summary(sqlite_url(restored / "agora.db"))


def test_restore_and_backup_refuse_what_would_lose_data(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    backup, logical = tmp_path / "b.db", tmp_path / "b.gz"
    try:
        with hub.client() as admin:
            ok(call(admin, "agora.agents.register", agent_name=unique("a")))
        agora_json("backup", backup, "--data-dir", hub.data_dir)
        agora_json("backup", logical, "--data-dir", hub.data_dir, "--format", "logical")
        refused(agora("backup", backup, "--data-dir", hub.data_dir), 1, "exists; pass --force")
        refused(agora("restore", backup, "--data-dir", hub.data_dir), 1, "exists; pass --force")
        refused(agora("restore", backup, "--data-dir", hub.data_dir, "--force"), 1, "is in use (a hub running on it?)")
        refused(agora("restore", logical, "--data-dir", hub.data_dir, "--force"), 1, "is in use (a hub running on it?)")
        with hub.client() as admin:
            ok(call(admin, "agora.agents.register", agent_name=unique("after-the-backup")))
    finally:
        hub.stop()
    live = sqlite_url(hub.data_dir / "agora.db")
    assert summary(live) != summary(sqlite_url(backup))
    agora_json("restore", backup, "--data-dir", hub.data_dir, "--force")
    assert summary(live) == summary(sqlite_url(backup))

    truncated = tmp_path / "truncated.gz"
    with gzip.open(logical, "rb") as whole, gzip.open(truncated, "wb") as part:
        part.write(b"".join(whole.readlines()[:-3]))
    refused(agora("restore", truncated, "--data-dir", tmp_path / "new"), 1, "incomplete")
    assert not (tmp_path / "new" / "agora.db").exists()  # nothing was left behind
    not_a_backup = tmp_path / "notes.txt"
    not_a_backup.write_text("hello")
    refused(agora("restore", not_a_backup, "--data-dir", tmp_path / "new"), 2, "is not an Agora backup")
    refused(agora("backup", tmp_path / "x.db", "--database-url", "postgresql://postgres@127.0.0.1:1/x", "--format", "sqlite"), 2, "--format logical")
    refused(agora("backup", tmp_path / "missing" / "x.db", "--data-dir", hub.data_dir), 2, "no directory")
