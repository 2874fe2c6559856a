"""``agora store copy`` between real stores: a hub on SQLite stopped mid-work, copied to PostgreSQL, carries on there
(leases, inboxes, read positions, workflows, sequences) and finishes each piece of work once; back to SQLite the
store is the same (counts and checksums); a target with data, or in use, is refused; a copy that fails leaves the
target as it was."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from sqlalchemy import JSON, BigInteger, Boolean, Column, Date, Float, LargeBinary, MetaData, String, Table

from agora.maintenance.checksums import TableDigest
from agora.store.types import UtcDateTime

from .conftest import call, fresh_postgres_url, new_tenant, ok, pg_fetch, unique, until
from .hubproc import HubProcess
from .store_cli import agora, agora_json, refused, rows, sqlite_url, summary

RICH_CONTENT = {"text": "héllo ✓ 😀 \"quoted\" \\ back", "big": 2**62 + 1, "f": 0.1 + 0.2, "tiny": 1e-300, "nested": {"null": None, "list": [1, 2.5, "x", True]}}


def as_agent(hub: HubProcess, token: str) -> httpx.Client:
    return hub.client(token)


def register(client: httpx.Client, name: str, capabilities: list[str]) -> str:
    return ok(call(client, "agora.agents.register", agent_name=name, capabilities=capabilities))["agent_token"]


def leave_work_half_done(hub: HubProcess) -> dict[str, Any]:
    """A tenant whose worker holds a task under lease, has tasks waiting (one behind it), a running workflow, messages
    waiting in its inbox (one handed out and hidden), and a broadcast read position."""
    with hub.client() as admin, new_tenant(admin, hub) as tenant:
        worker, peer = unique("worker"), unique("peer")
        tokens = {worker: register(tenant, worker, ["build"]), peer: register(tenant, peer, ["review"])}
        with as_agent(hub, tokens[worker]) as w, as_agent(hub, tokens[peer]) as p:
            ok(call(p, "agora.messaging.send", to_agent="broadcast", content="before the move"))
            got = ok(call(w, "agora.messaging.receive", limit=50))["messages"]  # its read position moves past it
            assert [m["content"] for m in got] == ["before the move"]
            ok(call(w, "agora.messaging.ack", message_ids=[got[0]["message_id"]]))
            hidden = ok(call(p, "agora.messaging.send", to_agent=worker, content={"n": 0}, priority="urgent"))["message_id"]
            ok(call(w, "agora.messaging.receive", limit=1, visibility_timeout=3600))  # handed out: hidden for an hour
            waiting = [ok(call(p, "agora.messaging.send", to_agent=worker, content={**RICH_CONTENT, "n": n}))["message_id"] for n in (1, 2)]
            ok(call(p, "agora.messaging.send", to_agent=worker, content=1.0))  # a bare JSON number that is whole
            held = ok(call(tenant, "agora.task.assign", task_type="compile", assignee=worker, payload={"unit": "core"}))["task_id"]
            claim = ok(call(w, "agora.task.claim", task_types=["compile"], lease_seconds=600))
            assert claim["task"]["task_id"] == held
            after = ok(call(tenant, "agora.task.assign", task_type="link", assignee=worker, depends_on=[held]))["task_id"]
            queued = ok(call(tenant, "agora.task.assign", task_type="test", required_capabilities=["build"], priority="high"))["task_id"]
            workflow = ok(
                call(tenant, "agora.workflow.create", workflow_name="release",
                     steps=[{"name": "bundle", "agent": worker, "input": {"v": 1}}, {"name": "publish", "agent": worker}])
            )["workflow_id"]  # fmt: skip
    return {
        "tenant": tenant.headers["Authorization"].split()[1],
        "worker": worker,
        "tokens": tokens,
        "lease": claim["lease"]["token"],
        "held": held,
        "tasks": [held, after, queued],
        "workflow": workflow,
        "hidden": hidden,
        "waiting": waiting,
    }


def finish_everything(hub: HubProcess, work: dict[str, Any]) -> list[str]:
    """The worker completes the task it held (with the lease it had before the move), then claims and completes
    whatever becomes eligible until the queue is empty; the ids it completed, in order."""
    done = [work["held"]]
    with as_agent(hub, work["tokens"][work["worker"]]) as w:
        ok(call(w, "agora.task.update", task_id=work["held"], lease_token=work["lease"], status="completed", result={"built": True}))
        for _ in range(20):
            claim = ok(call(w, "agora.task.claim", wait=1))
            if claim["task"] is None:
                break
            task = claim["task"]
            ok(call(w, "agora.task.update", task_id=task["task_id"], lease_token=claim["lease"]["token"], status="completed", result={"ok": task["task_type"]}))
            done.append(task["task_id"])
    return done


def partition_indexes(url: str) -> dict[str, int]:
    """Each partition of the events table (PostgreSQL): how many valid indexes it has."""
    rows = pg_fetch(url, "SELECT c.relname, count(x.indexrelid) FILTER (WHERE x.indisvalid) FROM pg_inherits i "
                         "JOIN pg_class c ON c.oid = i.inhrelid LEFT JOIN pg_index x ON x.indrelid = c.oid "
                         "WHERE i.inhparent = 'events'::regclass GROUP BY c.relname")  # fmt: skip
    return dict(rows)


def test_a_hub_moved_mid_work_to_postgres_finishes_it_once_and_the_way_back_is_lossless(tmp_path, postgres_url):
    first = HubProcess(tmp_path / "sqlite").start()
    try:
        work = leave_work_half_done(first)
    finally:
        first.stop()
    original = summary(sqlite_url(first.data_dir / "agora.db"))

    pg = fresh_postgres_url(postgres_url)
    copied = agora_json("store", "copy", "--from", sqlite_url(first.data_dir / "agora.db"), "--to", pg)
    assert {k: copied[k] for k in ("revision", "tables", "sequences")} == original == summary(pg)
    assert partition_indexes(pg) == dict.fromkeys(partition_indexes(pg), 3)  # the load's dropped indexes are back on each
    assert copied["rows_per_second"] > 0 and rows(original)["messages"] == 5 and original["sequences"]["messages"] == 5

    second = HubProcess(tmp_path / "pg", database_url=pg).start()  # its own data dir: a new admin key, same store
    try:
        completed = finish_everything(second, work)
        with as_agent(second, work["tokens"][work["worker"]]) as w, second.client(work["tenant"]) as tenant:
            inbox = ok(call(w, "agora.messaging.receive", limit=50))["messages"]
            # the one handed out before the move stays hidden; the others come, with their content and priority intact
            assert [m["message_id"] for m in inbox][:2] == work["waiting"] and work["hidden"] not in {m["message_id"] for m in inbox}
            assert inbox[0]["content"] == {**RICH_CONTENT, "n": 1} and inbox[2]["content"] == 1
            ok(call(w, "agora.messaging.ack", message_ids=[m["message_id"] for m in inbox]))
            ok(call(tenant, "agora.messaging.send", to_agent="broadcast", content="after the move"))
            news = ok(call(w, "agora.messaging.receive", limit=50))["messages"]
            assert [m["content"] for m in news] == ["after the move"]  # its broadcast position came along: nothing older
            status = until(lambda: (s := ok(call(tenant, "agora.workflow.status", workflow_id=work["workflow"])))["status"] == "completed" and s,
                           "the workflow did not finish")  # fmt: skip
            tasks = ok(call(tenant, "agora.task.list", limit=50))["tasks"]
            histories = {t["task_id"]: ok(call(tenant, "agora.task.history", task_id=t["task_id"]))["transitions"] for t in tasks}
    finally:
        second.stop()
    assert [s["state"] for s in status["steps"]] == ["completed", "completed"]
    assert len(tasks) == 5 and all(t["status"] == "completed" for t in tasks)  # 3 tasks and 2 workflow steps, no more
    assert sorted(completed) == sorted(t["task_id"] for t in tasks)  # each completed by the worker, once
    for task_id, history in histories.items():
        assert [h["to_status"] for h in history].count("completed") == 1, (task_id, history)

    moved = summary(pg)
    assert moved["sequences"]["messages"] == 6  # the new broadcast took the next seq after the copied ones
    back = tmp_path / "back" / "agora.db"
    agora_json("store", "copy", "--from", pg, "--to", sqlite_url(back))
    assert summary(sqlite_url(back)) == moved
    with sqlite3.connect(back) as conn:  # AUTOINCREMENT goes on past the copied seqs, as PostgreSQL's sequence did
        conn.execute("INSERT INTO messages (message_id, tenant_id, kind, sender_id, message_type, priority, content, context, created_at) "
                     "SELECT 'msg_x', tenant_id, kind, sender_id, message_type, priority, content, context, created_at FROM messages LIMIT 1")  # fmt: skip
        assert conn.execute("SELECT seq FROM messages WHERE message_id = 'msg_x'").fetchone()[0] == 7


def test_a_target_with_data_or_in_use_is_refused_and_left_as_it_was(tmp_path):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client() as admin:
            ok(call(admin, "agora.agents.register", agent_name=unique("a"), capabilities=["x"]))
        source, target = sqlite_url(hub.data_dir / "agora.db"), sqlite_url(tmp_path / "copy" / "agora.db")
        assert agora_json("store", "copy", "--from", source, "--to", target)["revision"]  # a live source: its snapshot
        before = summary(target)
        refused(agora("store", "copy", "--from", source, "--to", target), 1, "already holds data")
        assert summary(target) == before
        refused(agora("store", "copy", "--from", target, "--to", source, "--force"), 1, "is in use (a hub running on it?)")
        with hub.client() as admin:
            ok(call(admin, "agora.agents.register", agent_name=unique("b"), capabilities=["y"]))
    finally:
        hub.stop()
    assert summary(target) != summary(source)
    agora_json("store", "copy", "--from", source, "--to", target, "--force")
    printed = agora_json("store", "checksum", target)
    assert {k: printed[k] for k in ("revision", "tables", "sequences")} == summary(target) == summary(source)
    refused(agora("store", "copy", "--from", "mysql://x/y", "--to", target), 2, "not a store URL")
    refused(agora("store", "copy", "--from", sqlite_url(tmp_path / "none.db"), "--to", target), 2, "no SQLite database at")
    refused(agora("store", "copy", "--from", source, "--to", source), 1, "the same store")


def test_a_copy_that_fails_midway_leaves_the_target_as_it_was(tmp_path, postgres_url):
    hub = HubProcess(tmp_path / "hub").start()
    try:
        with hub.client() as admin:
            tenant = unique("t")
            ok(call(admin, "agora.agents.register", agent_name=tenant, capabilities=["x"]))
    finally:
        hub.stop()
    database = hub.data_dir / "agora.db"
    with sqlite3.connect(database) as conn:  # JSON that SQLite keeps and PostgreSQL's JSONB cannot hold (\u0000)
        conn.execute("""UPDATE agents SET metadata = '{"note": "nul \\u0000 inside"}' WHERE agent_name = ?""", (tenant,))
    pg = fresh_postgres_url(postgres_url)
    out = agora("store", "copy", "--from", sqlite_url(database), "--to", pg)
    refused(out, 1, "refused rows of agents")
    assert "\\u0000 cannot be converted to text" in out.stderr and "nothing was written" in out.stderr, out.stderr
    refused(agora("store", "checksum", pg), 1, "holds no Agora store")  # not even the schema was left behind


def test_the_digest_is_the_same_for_what_each_engine_hands_back():
    """The native rows SQLite and PostgreSQL give for the same values (JSON text spelled differently, a whole JSON number
    that SQLite's NUMERIC affinity made an integer, …) digest alike; SQL NULL and JSON null do not."""
    table = Table(
        "kinds", MetaData(),
        Column("id", BigInteger, primary_key=True), Column("doc", JSON), Column("at", UtcDateTime), Column("day", Date),
        Column("flag", Boolean), Column("ratio", Float), Column("blob", LargeBinary), Column("name", String(10)),
    )  # fmt: skip
    at = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)

    def digest(*rows: tuple[Any, ...]) -> str:
        d = TableDigest(table)
        d.add(rows)
        return d.digest

    sqlite_row = (2**62, '{"b":[1,2.5],"a":null}', at, at.date(), True, 0.1, b"\x00\xff", "x")
    pg_row = (2**62, '{"a": null, "b": [1, 2.5]}', at.astimezone(timezone(timedelta(0))), at.date(), True, 0.1, b"\x00\xff", "x")
    assert digest(sqlite_row) == digest(pg_row)
    assert digest((1, "1", *sqlite_row[2:])) == digest((1, "1.0", *sqlite_row[2:]))
    assert digest((1, '{"big": 1e+17, "x": [0.5]}', *sqlite_row[2:])) == digest((1, '{"x": [0.5], "big": 100000000000000000}', *sqlite_row[2:]))
    assert digest((1, None, *sqlite_row[2:])) != digest((1, "null", *sqlite_row[2:]))
    assert digest(sqlite_row, pg_row[:1] + ("{}",) + pg_row[2:]) == digest(pg_row[:1] + ("{}",) + pg_row[2:], sqlite_row)
    assert digest(sqlite_row) != digest(sqlite_row[:-1] + ("y",))
