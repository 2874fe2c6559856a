"""agora.messaging.search against real hubs: each filter, keyset pages, who finds what; and the plans that keep it fast."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, insert

from agora.store import Store
from agora.store.ops import messages as message_ops
from agora.store.ops.pagination import decode_cursor
from agora.store.schema import messages

from .conftest import call, expect_error, new_tenant, ok, unique
from .hubproc import HubProcess
from .security.test_tenancy import _answer
from .test_cli import agora, agora_json
from .test_store import store  # noqa: F401  (the fixture: a store on each engine, in this process)

SEARCH = "agora.messaging.search"


def search(client: httpx.Client, **args: Any) -> dict[str, Any]:
    return ok(call(client, SEARCH, **args))


def ids(found: dict[str, Any]) -> list[str]:
    return [m["message_id"] for m in found["messages"]]


def register(client: httpx.Client, name: str | None = None) -> dict[str, Any]:
    return ok(call(client, "agora.agents.register", agent_name=name or unique("searcher")))


def send(client: httpx.Client, **message: Any) -> str:
    return ok(call(client, "agora.messaging.send", **message))["message_id"]


@pytest.fixture
def tenant(admin: httpx.Client, hub: HubProcess) -> dict[str, Any]:
    """A fresh tenant (its customer key) with agents alice, bob and carol, and six messages between them, oldest first:
    alice → bob, bob → alice (a reply), alice to everyone, carol to a topic, the customer ('system') → carol, and a
    message whose content holds a LIKE wildcard."""
    customer = new_tenant(admin, hub)
    alice, bob, carol = (register(customer, unique(n)) for n in ("alice", "bob", "carol"))
    sent: list[str] = []
    with hub.client(alice["agent_token"]) as a, hub.client(bob["agent_token"]) as b, hub.client(carol["agent_token"]) as c:
        sent.append(send(a, to_agent=bob["agent_name"], content="Hello Bob", message_type="greeting", performative="request"))
        sent.append(send(b, to_agent=alice["agent_id"], content={"answer": "hi"}, performative="inform",
                         correlation={"conversation_id": "conv-1", "reply_to": sent[0]}))  # fmt: skip
        sent.append(send(a, to_agent="broadcast", content="lunch?"))
        sent.append(ok(call(c, "agora.messaging.publish", topic="builds.eu", content={"status": "RED"}))["message_id"])
    sent.append(send(customer, to_agent=carol["agent_id"], content="from the console"))
    sent.append(send(customer, to_agent=carol["agent_id"], content="100% done"))
    return {"customer": customer, "alice": alice, "bob": bob, "carol": carol, "sent": sent, "tenant_id": _tenant_id(admin, customer)}


def _tenant_id(admin: httpx.Client, customer: httpx.Client) -> str:
    agent = ok(call(customer, "agora.query.agents"))["agents"][0]
    return ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["tenant_id"]


def test_each_filter_finds_exactly_its_messages(tenant):
    customer, alice, bob, carol, sent = (tenant[k] for k in ("customer", "alice", "bob", "carol", "sent"))
    everything = search(customer)
    assert ids(everything) == sent[::-1] and everything["has_more"] is False and everything["next_cursor"] is None
    newest_first = [m["seq"] for m in everything["messages"]]
    assert newest_first == sorted(newest_first, reverse=True)
    reply = everything["messages"][-2]
    assert (reply["from_agent"], reply["from_agent_name"], reply["to_agent"], reply["to_agent_name"]) == (
        bob["agent_id"], bob["agent_name"], alice["agent_id"], alice["agent_name"]
    )
    assert reply["correlation"] == {"conversation_id": "conv-1", "reply_to": sent[0]} and reply["performative"] == "inform"
    assert {m["tenant_id"] for m in everything["messages"]} == {tenant["tenant_id"]}
    by_system = everything["messages"][0]
    assert (by_system["from_agent"], by_system["from_agent_name"], by_system["kind"]) == ("system", None, "direct")

    cases = [
        ({"from_agent": alice["agent_name"]}, [sent[2], sent[0]]),
        ({"from_agent": alice["agent_id"]}, [sent[2], sent[0]]),
        ({"from_agent": "system"}, [sent[5], sent[4]]),
        ({"to_agent": bob["agent_name"]}, [sent[0]]),
        ({"to_agent": carol["agent_id"]}, [sent[5], sent[4]]),
        ({"topic": "builds.eu"}, [sent[3]]),
        ({"topic": "builds"}, []),  # exactly the topic, not a pattern
        ({"kind": "broadcast"}, [sent[2]]),
        ({"kind": "direct"}, [sent[5], sent[4], sent[1], sent[0]]),
        ({"message_type": "greeting"}, [sent[0]]),
        ({"performative": "inform"}, [sent[1]]),
        ({"text": "hello bob"}, [sent[0]]),  # any case
        ({"text": "red"}, [sent[3]]),  # the content's JSON text
        ({"text": "answer"}, [sent[1]]),  # keys too
        ({"text": "100%"}, [sent[5]]),  # a wildcard is a character like any other
        ({"text": "_"}, []),
        ({"from_agent": alice["agent_name"], "kind": "broadcast"}, [sent[2]]),
        ({"from_agent": bob["agent_name"], "to_agent": carol["agent_name"]}, []),
    ]
    for args, expected in cases:
        assert ids(search(customer, **args)) == expected, args

    times = [m["created_at"] for m in everything["messages"]][::-1]  # oldest first, as the hub stored them
    assert ids(search(customer, since=times[3])) == [m for m, t in zip(sent, times) if t >= times[3]][::-1]
    assert ids(search(customer, until=times[3])) == [m for m, t in zip(sent, times) if t < times[3]][::-1]
    assert ids(search(customer, since=times[1], until=times[3])) == [m for m, t in zip(sent, times) if times[1] <= t < times[3]][::-1]
    later = (datetime.fromisoformat(times[-1].replace("Z", "+00:00")) + timedelta(hours=1)).isoformat()
    assert ids(search(customer, since=later)) == []


def test_pages_neither_repeat_nor_skip_while_messages_keep_arriving(hub, admin):
    customer = new_tenant(admin, hub)
    agent = register(customer)
    first = ok(call(customer, "agora.messaging.send_batch", messages=[{"to_agent": agent["agent_id"], "content": f"m{i}"} for i in range(25)]))
    before = [r["message_id"] for r in first["receipts"]][::-1]
    seen: list[str] = []
    cursor = None
    arrived: list[str] = []
    while True:
        found = search(customer, limit=7, **({"cursor": cursor} if cursor else {}))
        seen += ids(found)
        arrived.append(send(customer, to_agent=agent["agent_id"], content="newer than every page"))
        if not found["has_more"]:
            assert found["next_cursor"] is None and len(found["messages"]) == 4
            break
        assert len(found["messages"]) == 7
        cursor = found["next_cursor"]
    assert seen == before  # the messages that came meanwhile are newer than the first page: none slipped in
    assert ids(search(customer, limit=len(arrived))) == arrived[::-1]
    # A page ends exactly where the messages end: has_more only when there is another one.
    exact = search(customer, limit=len(arrived) + 25)
    assert exact["has_more"] is False and len(exact["messages"]) == len(arrived) + 25
    full = search(customer, limit=len(arrived))
    assert full["has_more"] is True and ids(search(customer, cursor=full["next_cursor"], limit=500)) == before


def test_a_customer_finds_only_its_tenant_s_messages_and_the_admin_every_tenant_s(hub, admin, tenant):
    other = new_tenant(admin, hub)
    theirs = send(other, to_agent=register(other)["agent_id"], content="elsewhere")
    assert theirs not in ids(search(tenant["customer"], limit=500))
    own = search(other)
    assert ids(own) == [theirs]
    # Naming what another tenant has is the same 404 as naming nothing.
    for field, real in (("tenant", tenant["tenant_id"]), ("from_agent", tenant["alice"]["agent_id"]), ("to_agent", tenant["bob"]["agent_name"])):
        ghost = unique("ghost") if field != "from_agent" else "agent_" + "0" * 24
        refused = call(other, SEARCH, **{field: real})
        assert refused.status_code == 404 and _answer(refused, real) == _answer(call(other, SEARCH, **{field: ghost}), ghost)
    assert ids(search(other, tenant=own["messages"][0]["tenant_id"])) == [theirs]  # its own, by id
    # The admin: one tenant, or every tenant; naming an agent searches that agent's tenant.
    assert ids(search(admin, tenant=tenant["tenant_id"])) == tenant["sent"][::-1]
    newest = ids(search(admin, limit=500))
    assert theirs in newest and set(tenant["sent"]) <= set(newest)
    assert ids(search(admin, from_agent=tenant["alice"]["agent_id"])) == [tenant["sent"][2], tenant["sent"][0]]


def test_an_agent_finds_what_it_sent_what_was_sent_to_it_and_its_tenant_s_broadcasts(hub, tenant):
    alice, bob, carol, sent = (tenant[k] for k in ("alice", "bob", "carol", "sent"))
    with hub.client(bob["agent_token"]) as b, hub.client(carol["agent_token"]) as c:
        to_carol = send(b, to_agent=carol["agent_id"], content="not for alice")
        ok(call(b, "agora.messaging.publish", topic="builds.eu", content="nor this"))
        to_alice = send(c, to_agent=alice["agent_name"], content="for alice")
    with hub.client(alice["agent_token"]) as a:
        # Its own direct messages both ways and the broadcast; not bob → carol, nor anyone's topic messages.
        assert ids(search(a)) == [to_alice, sent[2], sent[1], sent[0]]
        assert ids(search(a, from_agent=carol["agent_name"])) == [to_alice]
        assert ids(search(a, to_agent=carol["agent_id"])) == []
        assert ids(search(a, topic="builds.eu")) == [] and ids(search(a, kind="topic")) == []
        assert ids(search(a, limit=2)) == [to_alice, sent[2]]
        assert ids(search(a, tenant=tenant["tenant_id"])) == [to_alice, sent[2], sent[1], sent[0]]  # its own tenant, named
    with hub.client(carol["agent_token"]) as c:
        assert ids(search(c)) == [to_alice, to_carol, sent[5], sent[4], sent[3], sent[2]]
        expect_error(call(c, SEARCH, tenant="default"), 404, "not_found")


def test_bad_search_input_is_refused(tenant):
    customer = tenant["customer"]
    for args in (
        {"limit": 0}, {"limit": 501}, {"kind": "everything"}, {"topic": "no spaces"}, {"text": ""}, {"performative": "shout"},
        {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, {"since": "yesterday"}, {"seq": 1},
    ):  # fmt: skip
        expect_error(call(customer, SEARCH, **args), 422, "invalid_argument")
    for cursor in ("!!", "eHl6", "MTIzNDU2Nzg5MDEyMzQ1Njc4OTA"):  # not base64; "xyz"; twenty digits
        expect_error(call(customer, SEARCH, cursor=cursor), 400, "invalid_argument")
    expect_error(call(customer, SEARCH, from_agent="nobody-" + unique()), 404, "not_found")


def test_the_cli_searches_in_a_table_or_as_json(sqlite_hub):
    with sqlite_hub.client() as admin:
        alice, bob = register(admin), register(admin)
        with sqlite_hub.client(alice["agent_token"]) as a:
            sent = [send(a, to_agent=bob["agent_id"], content=f"cli search {i}", message_type="cli-test") for i in range(3)]
    found = agora_json(sqlite_hub, "messages", "search", "CLI SEARCH", "--from", alice["agent_name"], "--type", "cli-test", "--limit", "2")
    assert ids(found) == sent[:0:-1] and found["has_more"] is True
    rest = agora_json(sqlite_hub, "messages", "search", "--to", bob["agent_name"], "--cursor", found["next_cursor"])
    assert ids(rest) == [sent[0]]
    shown = agora(sqlite_hub, "messages", "search", "--from", alice["agent_id"], "--limit", "2")
    assert shown.returncode == 0 and sent[2] in shown.stdout and alice["agent_name"] in shown.stdout
    assert "--cursor" in shown.stdout  # how to get the next page
    refused = agora(sqlite_hub, "messages", "search", "--kind", "sideways")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr


# The plans: each filter that names a column walks an index that starts with the tenant and that column, newest first,
# on SQLite (without statistics, as the hub runs it) and on PostgreSQL under the plan it may switch to after five runs
# (one for any parameter values); no plan sorts or scans the tenant's messages.

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
A, B = "agent_" + "a" * 24, "agent_" + "b" * 24


def _seed(conn: Connection) -> None:
    """20,000 messages of a big tenant and 20 of a small one; A sends, B receives, each topic and the broadcasts are
    about one in a hundred."""
    rows = []
    for i in range(20_020):
        kind = {1: "broadcast", 2: "topic"}.get(i % 100, "direct")
        rows.append({
            "message_id": f"msg_{i:024x}", "tenant_id": "small" if i % 1001 == 0 else "big", "kind": kind,
            "sender_id": A if i % 100 == 3 else f"agent_{i % 97:024x}",
            "recipient_id": (B if i % 100 == 4 else f"agent_{i % 89:024x}") if kind == "direct" else None,
            "topic": f"t{i // 100 % 3}" if kind == "topic" else None, "message_type": "info", "priority": 2,
            "content": {"n": i}, "context": {}, "created_at": NOW + timedelta(seconds=i),
        })  # fmt: skip
    conn.execute(insert(messages), rows)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE messages")


def _plan(conn: Connection, stmt: Any) -> str:
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})  # the tenant written in
    params = compiled.construct_params()
    args = [params[name] for name in compiled.positiontup]
    if conn.dialect.name == "sqlite":
        return "\n".join(r[3] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", tuple(args)))
    conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
    conn.exec_driver_sql(f"PREPARE search_plan AS {compiled.string}")
    try:
        values = ", ".join(f"'{a}'" if isinstance(a, str) else str(a) for a in args)
        return "\n".join(r[0] for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE search_plan({values})"))
    finally:
        conn.exec_driver_sql("DEALLOCATE search_plan")


CASES = {  # a query, and the index its walk must take
    "tenant": (message_ops.Search(tenant_id="small"), "ix_messages_tenant_seq"),
    "sender": (message_ops.Search(tenant_id="big", sender_id=A), "ix_messages_sender"),
    "recipient": (message_ops.Search(tenant_id="big", recipient_id=B), "ix_messages_recipient"),
    "topic": (message_ops.Search(tenant_id="big", topic="t1"), "ix_messages_topic"),
    "kind": (message_ops.Search(tenant_id="big", kind="broadcast"), "ix_messages_fanout"),
}


def _plans(conn: Connection) -> dict[str, str]:
    _seed(conn)
    plans = {name: _plan(conn, message_ops.page_statement(query, None, 15_000, 51)) for name, (query, _) in CASES.items()}
    plans["agent"] = _plan(conn, message_ops.page_statement(message_ops.Search(tenant_id="big"), A, None, 51))  # as A
    return plans


async def test_each_search_walks_its_index_newest_first(store: Store):
    plans = await store.write(_plans)
    for name, (_query, index) in CASES.items():
        plan = plans[name]
        assert index in plan and "Sort" not in plan and "TEMP B-TREE" not in plan, (name, plan)
    agent = plans["agent"]  # three walks, merged: only the page's few rows are sorted
    assert all(index in agent for index in ("ix_messages_sender", "ix_messages_recipient", "ix_messages_fanout")), agent
    assert "SCAN messages" not in agent and "Seq Scan" not in agent, agent



NEEDLES = (11_999, 11_998, 11_997, 11_996, 6_000, 10)


def _scan_pages(conn: Connection) -> list[message_ops.Found]:
    """12,000 messages of a tenant, six holding a needle, and every page of a search for it (3 a page), walked by its
    cursors with a window of 5,000 seqs."""
    tenant = unique("scanned")
    conn.execute(insert(messages), [
        {"message_id": f"msg_{tenant}_{i}", "tenant_id": tenant, "kind": "broadcast", "sender_id": A, "message_type": "info",
         "priority": 2, "content": {"i": i, "w": "needle" if i in NEEDLES else "hay"}, "context": {}, "created_at": NOW}
        for i in range(12_000)
    ])  # fmt: skip
    query = message_ops.Search(tenant_id=tenant, text="NEEDLE")
    pages, before = [], None
    while True:
        pages.append(found := message_ops.search(conn, query, None, before, 3))
        if found.next_cursor is None:
            return pages
        before = int(decode_cursor(found.next_cursor))


async def test_a_search_no_index_serves_reads_a_window_at_a_time_and_its_cursor_finds_the_rest(store: Store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(message_ops, "SCAN_WINDOW", 5_000)
    pages = await store.write(_scan_pages)
    assert [r["content"]["i"] for p in pages for r in p.rows] == list(NEEDLES)  # each once, newest first
    # a full page; a window that held one; the next window, one; the last (nothing older): one, and no cursor
    assert [(len(p.rows), p.partial) for p in pages] == [(3, False), (1, True), (1, True), (1, False)]
    assert pages[-1].next_cursor is None
