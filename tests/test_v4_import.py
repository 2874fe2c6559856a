"""``agora import v4`` of a realistic v4 export (seed 000's agent_capability and agent_message tables: 40 agents, 3,000
messages) into the store of a running hub, on each engine: the dry run writes nothing, the import keeps every row
with a new id, the second import creates nothing, and the hub serves the result (inboxes in v4's order with v4's
priorities mapped, delivered messages as history). A bad export is refused whole."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .conftest import call, expect_error, ok, unique
from .hubproc import HubProcess
from .store_cli import agora, agora_json, refused

CAPABILITIES = ["documentation", "review", "analysis", "testing", "deploy", "translate"]
TYPES = ["task_request", "review_request", "status_update", "info"]
PRIORITY_NAMES = {1: "low", 2: "normal", 3: "high", 4: "urgent"}
# Two days ago: within the hub's retention (7 days), which purges older history (tested below on its own).
START = (datetime.now(timezone.utc) - timedelta(days=2)).replace(microsecond=0)


def realistic_export(prefix: str, agents: int = 40, messages: int = 3000) -> dict[str, Any]:
    """What `spacetime export agora-marketplace --format json` gave: capability rows, messages between the agents
    (some broadcast, most delivered, priorities 1-4 and a few outside), both SpacetimeDB timestamp spellings, a few
    rows without an id, and a table the import does not take."""
    rng = random.Random(30)
    names = [f"{prefix}{i:02d}" for i in range(agents)]
    capability = [
        {"agent_id": name, "capability_type": cap, "proficiency": rng.randint(0, 100), "max_tasks": rng.randint(1, 5)}
        for name in names[1:]  # names[0] registered no capability: it is created from the messages alone
        for cap in rng.sample(CAPABILITIES, rng.randint(1, 3))
    ]
    rows = []
    for i in range(messages):
        sender = rng.choice(names[1:])
        at = START + timedelta(seconds=i)
        rows.append(
            {
                "id": i + 1,
                "from_agent": sender,
                "to_agent": "broadcast" if rng.random() < 0.05 else rng.choice([n for n in names if n != sender]),
                "message_type": rng.choice(TYPES),
                "content": json.dumps({"doc": f"spec-{i}.md"}) if i % 3 == 0 else f"message {i} ✓",
                "priority": rng.choice([1, 2, 2, 3, 4, 0, 7]),
                "timestamp": {"__timestamp_micros_since_unix_epoch__": int(at.timestamp() * 1_000_000)} if i % 2 else at.isoformat(),
                "delivered": rng.random() < 0.6,
            }
        )
    rows.reverse()  # exported newest first: the import orders them by time
    no_id = {"from_agent": names[1], "to_agent": names[0], "message_type": "info", "content": "twice", "priority": 2}
    return {"agent_capability": capability, "agent_message": [*rows, no_id, dict(no_id)], "task_queue": [{"id": 1}]}


def store_args(hub: HubProcess) -> list[str]:
    return ["--database-url", hub.database_url] if hub.database_url else ["--data-dir", str(hub.data_dir)]


def test_a_realistic_export_is_imported_once_into_a_running_hub(hub, tmp_path):
    prefix, tenant = unique("v4a").replace("-", "_"), unique("v4-tenant")
    export = realistic_export(prefix)
    path = tmp_path / "v4_export.json"
    path.write_text(json.dumps(export))
    store = store_args(hub)

    dry = agora_json("import", "v4", path, *store, "--tenant", tenant, "--dry-run")
    assert dry["dry_run"] and len(dry["agents"]) == 40 and dry["messages"]["created"] == 3002
    with hub.client() as admin:  # nothing was written: not even the tenant
        expect_error(call(admin, "agora.agents.get", agent=f"{prefix}00"), 404, "not_found")

    first = agora_json("import", "v4", path, *store, "--tenant", tenant, "--mapping", tmp_path / "ids.json")
    assert first["tenant_created"] and {a["status"] for a in first["agents"]} == {"created"}
    assert first["messages"]["created"] == 3002 and first["messages"]["priority_defaulted"] > 0
    assert json.loads((tmp_path / "ids.json").read_text()) == first
    ids = first["messages"]["ids"]
    assert len(set(ids.values())) == 3002 and "v4:1" in ids and all(v.startswith("msg_") for v in ids.values())

    again = agora_json("import", "v4", path, *store, "--tenant", tenant)
    assert {a["status"] for a in again["agents"]} == {"unchanged"} and [a["agent_id"] for a in again["agents"]] == [a["agent_id"] for a in first["agents"]]
    assert again["messages"]["created"] == 0 and again["messages"]["already_imported"] == 3002 and again["messages"]["ids"] == ids

    agents = {a["v4_agent_id"]: a["agent_id"] for a in first["agents"]}
    messages = export["agent_message"]
    waiting = [m for m in messages if m.get("id") and not m["delivered"] and m["to_agent"] != "broadcast"]
    with hub.client() as admin:
        doc = ok(call(admin, "agora.agents.get", agent=agents[f"{prefix}05"], include_counts=True))
        caps = [c["capability_type"] for c in export["agent_capability"] if c["agent_id"] == f"{prefix}05"]
        assert doc["capabilities"] == caps and doc["metadata"]["migration_source"] == "v4" and doc["metadata"]["v4_agent_id"] == f"{prefix}05"
        assert set(doc["metadata"]["proficiency"]) == set(caps)
        assert doc["inbox_depth"] == sum(1 for m in waiting if m["to_agent"] == f"{prefix}05")
        assert ok(call(admin, "agora.agents.get", agent=agents[f"{prefix}00"]))["capabilities"] == []

        inbox = ok(call(admin, "agora.messaging.receive", agent=agents[f"{prefix}07"], limit=500, visibility_timeout=1))["messages"]
        expected = sorted(
            (m for m in waiting if m["to_agent"] == f"{prefix}07"),
            key=lambda m: (-(m["priority"] if m["priority"] in PRIORITY_NAMES else 2), m["id"]),
        )  # urgent first, then v4's order
        assert [m["message_id"] for m in inbox] == [ids[f"v4:{m['id']}"] for m in expected]
        for got, sent in zip(inbox, expected):
            assert got["content"] == sent["content"] and got["message_type"] == sent["message_type"]
            assert got["priority"] == PRIORITY_NAMES.get(sent["priority"], "normal") and got["from_agent"] == agents[sent["from_agent"]]
        second = next(m for m in messages if m.get("id") == 2)  # "message 1 ✓", sent a second after the first
        found = ok(call(admin, "agora.messaging.search", from_agent=agents[second["from_agent"]], text="message 1 ", limit=5))["messages"]
        assert [m["message_id"] for m in found] == [ids["v4:2"]]  # kept with its time, whether delivered or not
        assert found[0]["created_at"].startswith((START + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")) and found[0]["context"] == {"v4": {"message_id": 2}}


def test_history_the_retention_job_purged_is_not_imported_again(tmp_path):
    """v4 messages keep their v4 times, so a hub's retention purges the delivered history at its next run; a second
    import then still knows what it made (the ledger), and creates nothing."""
    from sqlalchemy import create_engine

    from agora.store.ops import messages as message_ops

    path, store = tmp_path / "v4_export.json", tmp_path / "store"
    export = realistic_export("old", agents=5, messages=200)
    for row in export["agent_message"]:  # sent in 2025
        row["timestamp"] = (datetime(2025, 5, 1, tzinfo=timezone.utc) + timedelta(seconds=row.get("id", 0))).isoformat()
    path.write_text(json.dumps(export))
    first = agora_json("import", "v4", path, "--data-dir", store)
    assert first["messages"]["created"] == 202 and first["messages"]["acknowledged"] > 0
    engine = create_engine(f"sqlite:///{store / 'agora.db'}")
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:  # what the hub's retention job runs, with the default 7 days
        purged = message_ops.purge(conn, now - timedelta(days=7), now)
    engine.dispose()
    assert purged["old_messages"] >= first["messages"]["acknowledged"]
    again = agora_json("import", "v4", path, "--data-dir", store)
    assert again["messages"]["created"] == 0 and again["messages"]["already_imported"] == 202
    assert again["messages"]["ids"] == first["messages"]["ids"]


def test_a_bad_export_is_refused_whole_and_changes_nothing(sqlite_hub, tmp_path):
    prefix, tenant = unique("v4b").replace("-", "_"), unique("v4-tenant")
    export = realistic_export(prefix, agents=3, messages=20)
    export["agent_message"][3]["priority"] = "high"
    export["agent_message"][5]["to_agent"] = "no spaces allowed"
    del export["agent_message"][8]["from_agent"]
    export["agent_capability"][0]["proficiency"] = 101
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(export))
    out = agora("import", "v4", path, "--data-dir", sqlite_hub.data_dir, "--tenant", tenant)
    refused(out, 2, "4 row(s) cannot be imported; nothing was")
    for where in ("agent_message[3].priority", "agent_message[5].to_agent", "agent_message[8].from_agent", "agent_capability[0].proficiency"):
        assert where in out.stderr, out.stderr
    with sqlite_hub.client() as admin:
        expect_error(call(admin, "agora.agents.get", agent=f"{prefix}00"), 404, "not_found")
    export = realistic_export(prefix, agents=3, messages=5)
    export["agent_message"].append(dict(export["agent_message"][0]))
    path.write_text(json.dumps(export))
    refused(agora("import", "v4", path, "--data-dir", sqlite_hub.data_dir), 2, "agent_message ids appear more than once: 5")
    path.write_text("[1, 2]")
    refused(agora("import", "v4", path, "--data-dir", sqlite_hub.data_dir), 2, "not a v4 export")
    refused(agora("import", "v4", Path(tmp_path / "none.json"), "--data-dir", sqlite_hub.data_dir), 2, "cannot read")
