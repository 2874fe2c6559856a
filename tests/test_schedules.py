"""Schedules (issue 61): triggers computed by the library (DST, time zones, known dates), and on hubs of both engines
ticks that fire on time and once each, bad input refused with nothing saved, overlap policies with a slow worker,
pause/resume/run_now/update/delete and the history, a revoked creator, tenants that see only their own, and a
workflow action that ends after max_runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from agora.core.schedules import triggers
from agora_sdk.errors import InvalidArgument

from agora.store import Store

from .conftest import call, expect_error, fresh_postgres_url, new_tenant, ok, unique, until
from .hubproc import HubProcess
from .test_store import store  # noqa: F401 - the fixture: both engines

UTC = timezone.utc
FAST = {"AGORA_SCHEDULE_MIN_INTERVAL": "1", "AGORA_SCHEDULE_GRACE": "2"}


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def walk(text: str, zone: str, start: datetime, count: int, anchor: datetime | None = None) -> list[datetime]:
    ticks = triggers.parse(text, zone).ticks(start, anchor or start)
    return [next(ticks) for _ in range(count)]


# -- triggers, through the library ---------------------------------------------------------------------------------


def test_a_local_time_that_does_not_exist_fires_once_at_the_change_and_one_that_happens_twice_fires_once() -> None:
    # Berlin: clocks go 02:00 → 03:00 on 2026-03-29, and 03:00 → 02:00 on 2026-10-25.
    assert walk("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3) == [
        utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30),  # 02:30 CET, 03:00 CEST, 02:30 CEST
    ]  # fmt: skip
    assert walk("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), 2) == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # An expression of every half hour follows real time through the repeated hour: four ticks between 02:00 and 03:00.
    assert walk("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 50), 5) == [
        utc(2026, 10, 25, 0, 0), utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 0),
    ]  # fmt: skip


def test_time_zones_and_known_dates() -> None:
    monday_nine = triggers.parse("0 9 * * 1", "America/New_York")
    assert monday_nine.after(utc(2026, 11, 29, 12), utc(2026, 11, 29)) == utc(2026, 11, 30, 14)  # EST: UTC-5
    assert monday_nine.after(utc(2026, 6, 1, 14), utc(2026, 6, 1)) == utc(2026, 6, 8, 13)  # EDT: UTC-4
    assert monday_nine.describe() == "At 09:00 AM, only on Monday (America/New_York)"
    assert walk("0 9 * * *", "Asia/Kolkata", utc(2026, 11, 29), 1) == [utc(2026, 11, 29, 3, 30)]  # UTC+5:30
    assert walk("@monthly", "UTC", utc(2026, 11, 29), 2) == [utc(2026, 12, 1), utc(2027, 1, 1)]
    assert walk("0 0 29 2 *", "UTC", utc(2026, 1, 1), 1) == [utc(2028, 2, 29)]  # the next leap day
    every = triggers.parse("every 1h30m", "UTC")
    assert every.describe() == "Every 1 hour 30 minutes"
    assert walk("every 1h30m", "UTC", utc(2026, 1, 1, 2), 2, anchor=utc(2026, 1, 1)) == [utc(2026, 1, 1, 3), utc(2026, 1, 1, 4, 30)]
    once = triggers.parse("at 2026-12-01T09:00", "Europe/Berlin")
    assert (once.kind, once.after(utc(2026, 11, 29), utc(2026, 11, 29)), once.after(utc(2026, 12, 2), utc(2026, 12, 2))) == ("at", utc(2026, 12, 1, 8), None)


@pytest.mark.parametrize(
    ("text", "zone", "field"),
    [("61 * * * *", "UTC", "trigger"), ("* * * *", "UTC", "trigger"), ("@fortnightly", "UTC", "trigger"), ("every 5 minutes", "UTC", "trigger"),
     ("every 5s", "UTC", "trigger"), ("at tomorrow", "UTC", "trigger"), ("@daily", "Mars/Olympus_Mons", "timezone")],
)  # fmt: skip
def test_bad_triggers_name_their_field(text: str, zone: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        triggers.parse(text, zone, min_interval=10)
    assert refused.value.details["field"] == field


# -- on a hub --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("sched-sqlite"), env=FAST).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def fast_postgres(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("sched-pg"), database_url=fresh_postgres_url(postgres_url), env=FAST).start()
    yield hub
    hub.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def fast(request: pytest.FixtureRequest) -> HubProcess:
    return request.getfixturevalue(f"fast_{request.param}")


def agent(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    return ok(call(client, "agora.agents.register", agent_name=unique("sched"), **fields))


def schedule(client: httpx.Client, trigger: str, action: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return ok(call(client, "agora.schedules.create", name=unique("s"), trigger=trigger, action=action, **fields))


def history(client: httpx.Client, ref: str, **args: Any) -> list[dict[str, Any]]:
    return ok(call(client, "agora.schedules.history", schedule=ref, limit=500, **args))["ticks"]


def received(hub: HubProcess, token: str) -> list[dict[str, Any]]:
    with hub.client(token) as inbox:
        got = ok(call(inbox, "agora.messaging.receive", limit=500))["messages"]
        if got:
            ok(call(inbox, "agora.messaging.ack", message_ids=[m["message_id"] for m in got]))
    return got


def test_ticks_fire_on_time_once_each(fast: HubProcess) -> None:
    with fast.client() as admin:
        inbox = agent(admin)
        made = schedule(admin, "every 1s", {"message": {"to_agent": inbox["agent_id"], "content": {"tick": "{{tick}}", "run": "{{run}}"}}})
        assert made["trigger_kind"] == "interval" and made["trigger_words"] == "Every 1 second" and len(made["next_runs"]) == 5
        assert [datetime.fromisoformat(b) - datetime.fromisoformat(a) for a, b in zip(made["next_runs"], made["next_runs"][1:])] == [timedelta(seconds=1)] * 4
        until(lambda: len([t for t in history(admin, made["name"]) if t["outcome"] == "fired"]) >= 4, "four ticks never fired", 10)
        ok(call(admin, "agora.schedules.pause", schedule=made["name"]))
        ticks = sorted(history(admin, made["schedule_id"]), key=lambda t: t["tick_at"])
        messages = received(fast, inbox["agent_token"])
    assert all(t["outcome"] == "fired" and t["run_kind"] == "message" and t["run_status"] == "sent" for t in ticks), ticks
    assert [t["tick_at"] for t in ticks] == made["next_runs"][: len(ticks)]  # every tick, in order, none left out
    assert max(t["lag_seconds"] for t in ticks) < 1.0, ticks
    assert sorted(m["message_id"] for m in messages) == sorted(t["run_id"] for t in ticks)  # one message a tick
    by_run = {m["content"]["run"]: m["content"]["tick"] for m in messages}
    assert by_run == {str(i + 1): t["tick_at"] for i, t in enumerate(ticks)}  # {{run}} and {{tick}} filled in


def test_bad_input_is_refused_and_nothing_saved(fast_sqlite: HubProcess) -> None:
    with fast_sqlite.client() as admin:
        inbox = agent(admin)
        message = {"message": {"to_agent": inbox["agent_id"], "content": {}}}
        before = ok(call(admin, "agora.schedules.list"))["schedules"]
        refusals = [
            ({"trigger": "0 25 * * *", "action": message}, 400, "trigger"),
            ({"trigger": "every 500ms", "action": message}, 400, "trigger"),
            ({"trigger": "every 2s", "action": message, "timezone": "Nowhere/Town"}, 400, "timezone"),
            ({"trigger": "every 1s", "action": message, "jitter_seconds": 5}, 400, "jitter_seconds"),
            ({"trigger": "@daily", "action": message, "start_at": "2027-01-02T00:00:00Z", "end_at": "2027-01-01T00:00:00Z"}, 400, "end_at"),
            ({"trigger": "at 2020-01-01T00:00", "action": message}, 400, "trigger"),
            ({"trigger": "@daily", "action": {"workflow": {"workflow_name": "no-such-flow"}}}, 404, "action.workflow.workflow_name"),
            ({"trigger": "@daily", "action": {"message": {"to_agent": "nobody-" + unique(), "content": {}}}}, 404, "action.message.to_agent"),
        ]
        for body, status, field in refusals:
            error = expect_error(call(admin, "agora.schedules.create", name=unique("bad"), **body), status, "invalid_argument" if status == 400 else "not_found")
            assert error["details"]["field"] == field, (body, error)
        for body in ({"trigger": "@daily", "action": {}}, {"trigger": "@daily", "action": {**message, "task": {"task_type": "t", "assignee": "x"}}},
                     {"trigger": "@daily", "action": {"task": {"task_type": "t"}}}, {"trigger": "@daily", "action": message, "overlap": "sometimes"}):  # fmt: skip
            expect_error(call(admin, "agora.schedules.create", name=unique("bad"), **body), 422, "invalid_argument")
        warned = schedule(admin, "@daily", {"task": {"task_type": "t", "required_capabilities": [unique("nobody-has-it")]}})
        assert "no active agent has" in warned["warnings"][0]
        expect_error(call(admin, "agora.schedules.create", name=warned["name"], trigger="@daily", action=message), 409, "conflict")
        after = ok(call(admin, "agora.schedules.list"))["schedules"]
        assert [s["name"] for s in after] == sorted([s["name"] for s in before] + [warned["name"]])
        expect_error(call(admin, "agora.schedules.history", schedule="nope", cursor="!!"), 400, "invalid_argument")
        expect_error(call(admin, "agora.schedules.get", schedule="nope"), 404, "not_found")


def _worker(client: httpx.Client, token: str) -> list[tuple[str, str]]:
    """Claim every task the worker can: (task id, lease token) each."""
    with httpx.Client(base_url=str(client.base_url), headers={"Authorization": f"Bearer {token}"}) as worker:
        claimed = ok(call(worker, "agora.task.claim_batch", max_tasks=50))["claims"]
    return [(c["task"]["task_id"], c["lease"]["token"]) for c in claimed]


def _complete(client: httpx.Client, token: str, claims: list[tuple[str, str]]) -> None:
    with httpx.Client(base_url=str(client.base_url), headers={"Authorization": f"Bearer {token}"}) as worker:
        for task_id, lease in claims:
            ok(call(worker, "agora.task.update", task_id=task_id, lease_token=lease, status="completed"))


def test_overlap_policies_with_a_slow_worker(fast: HubProcess) -> None:
    """Each tick's task goes to one worker, which holds the first ones ~3 s before completing them."""
    with fast.client() as admin:
        workers = {policy: agent(admin, capabilities=[unique("slow")]) for policy in ("skip", "queue", "allow")}
        made = {
            policy: schedule(admin, "every 1s", {"task": {"task_type": "slow", "assignee": w["agent_id"]}}, overlap=policy)
            for policy, w in workers.items()
        }  # fmt: skip
        time.sleep(3.3)
        held = {policy: _worker(admin, w["agent_token"]) for policy, w in workers.items()}
        outcomes = {p: [t["outcome"] for t in sorted(history(admin, s["name"]), key=lambda t: t["tick_at"])] for p, s in made.items()}
        assert outcomes["skip"][0] == "fired" and set(outcomes["skip"][1:]) == {"skipped"} and len(outcomes["skip"]) >= 3, outcomes
        assert outcomes["queue"][:2] == ["fired", "queued"] and set(outcomes["queue"][2:]) == {"skipped"}, outcomes
        assert set(outcomes["allow"]) == {"fired"} and len(held["allow"]) == len(outcomes["allow"]) >= 3, outcomes
        assert len(held["skip"]) == len(held["queue"]) == 1
        waiting = next(t for t in history(admin, made["queue"]["name"]) if t["outcome"] == "queued")
        completing = datetime.now(UTC)
        for policy, w in workers.items():
            _complete(admin, w["agent_token"], held[policy])
        queued = until(
            lambda: next((t for t in history(admin, made["queue"]["name"]) if t["tick_at"] == waiting["tick_at"] and t["outcome"] == "fired"), None),
            "the queued tick never ran once the run before it ended", 5,
        )  # fmt: skip
        assert datetime.fromisoformat(queued["fired_at"]) > completing > datetime.fromisoformat(queued["tick_at"])  # it waited for the end
        until(lambda: history(admin, made["skip"]["name"])[0]["outcome"] == "fired", "skip never fired again once the run ended", 5)
        for s in made.values():
            ok(call(admin, "agora.schedules.delete", schedule=s["schedule_id"]))


def test_pause_resume_run_now_update_and_history_pages(fast: HubProcess) -> None:
    with fast.client() as admin:
        inbox = agent(admin)
        made = schedule(admin, "0 9 * * 1", {"message": {"to_agent": inbox["agent_id"], "content": {"at": "{{tick}}"}}}, timezone="Europe/Berlin")
        assert made["trigger_words"] == "At 09:00 AM, only on Monday (Europe/Berlin)" and made["status"] == "active"
        assert all(datetime.fromisoformat(t).astimezone(UTC).hour in (7, 8) for t in made["next_runs"])
        paused = ok(call(admin, "agora.schedules.pause", schedule=made["name"], note="holidays"))
        assert (paused["status"], paused["status_reason"], paused["next_runs"]) == ("paused", "paused: holidays", [])
        ran = ok(call(admin, "agora.schedules.run_now", schedule=made["name"]))["tick"]  # a paused schedule can still be run by hand
        assert ran["outcome"] == "fired" and ran["manual"] and ran["run_kind"] == "message"
        assert [m["message_id"] for m in received(fast, inbox["agent_token"])] == [ran["run_id"]]
        resumed = ok(call(admin, "agora.schedules.resume", schedule=made["schedule_id"]))
        assert resumed["status"] == "active" and resumed["status_reason"] is None and len(resumed["next_runs"]) == 5
        changed = ok(call(admin, "agora.schedules.update", schedule=made["name"], trigger="every 1s", max_runs=3, timezone="UTC"))
        assert changed["trigger_kind"] == "interval" and len(changed["next_runs"]) == 2  # one run made, two left
        ended = until(lambda: (s := ok(call(admin, "agora.schedules.get", schedule=made["name"])))["status"] == "ended" and s, "max_runs never ended it", 10)
        assert ended["runs"] == 3 and "max_runs" in ended["status_reason"] and ended["next_runs"] == []
        first = ok(call(admin, "agora.schedules.history", schedule=made["name"], limit=2))
        rest = ok(call(admin, "agora.schedules.history", schedule=made["name"], limit=2, cursor=first["next_cursor"]))
        assert len(first["ticks"]) == 2 and len(rest["ticks"]) == 1 and rest["next_cursor"] is None
        assert [t["tick_at"] for t in first["ticks"] + rest["ticks"]] == sorted([t["tick_at"] for t in first["ticks"] + rest["ticks"]], reverse=True)
        assert len(received(fast, inbox["agent_token"])) == 2
        expect_error(call(admin, "agora.schedules.resume", schedule=made["name"]), 400, "invalid_argument")  # ended: change it first
        assert ok(call(admin, "agora.schedules.delete", schedule=made["name"]))["deleted"] is True
        expect_error(call(admin, "agora.schedules.get", schedule=made["schedule_id"]), 404, "not_found")


def test_a_revoked_creator_stops_its_schedules(fast: HubProcess) -> None:
    with fast.client() as admin:
        key = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
        with fast.client(key["key"]) as customer:
            inbox = agent(customer)
            made = schedule(customer, "every 1s", {"message": {"to_agent": inbox["agent_id"], "content": {}}})
            until(lambda: history(customer, made["name"]), "it never fired", 5)
            ran = ok(call(customer, "agora.schedules.run_now", schedule=made["name"]))["tick"]  # as the tenant (row security)
            assert ran["outcome"] == "fired" and ran["run_kind"] == "message"
            ok(call(admin, "agora.admin.keys.revoke", key_id=key["info"]["key_id"]))
        stopped = until(
            lambda: (s := ok(call(admin, "agora.schedules.get", schedule=made["schedule_id"])))["status"] == "stopped" and s, "it never stopped", 10
        )  # fmt: skip
        assert stopped["status_reason"] == "stopped: the key that made it was revoked or has expired" and stopped["next_runs"] == []
        refused = history(admin, made["schedule_id"])[0]
        assert refused["outcome"] == "refused" and "revoked" in refused["reason"] and refused["run_id"] is None
        count = len(history(admin, made["schedule_id"]))
        time.sleep(1.5)
        assert len(history(admin, made["schedule_id"])) == count  # nothing more


def test_tenants_see_only_their_own_and_viewers_only_read(fast_sqlite: HubProcess) -> None:
    tenant = unique("tenant")
    with fast_sqlite.client() as admin, new_tenant(admin, fast_sqlite) as two:
        keys = {role: ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, role=role))["key"] for role in ("developer", "viewer")}
        with fast_sqlite.client(keys["developer"]) as one, fast_sqlite.client(keys["viewer"]) as reader:
            mine = schedule(one, "@daily", {"message": {"to_agent": agent(one)["agent_id"], "content": {}}})
            for tool in ("get", "history", "pause", "resume", "run_now", "delete"):
                expect_error(call(two, f"agora.schedules.{tool}", schedule=mine["name"]), 404, "not_found")
            assert ok(call(two, "agora.schedules.list"))["schedules"] == []
            assert [s["name"] for s in ok(call(reader, "agora.schedules.list"))["schedules"]] == [mine["name"]]
            expect_error(call(reader, "agora.schedules.pause", schedule=mine["name"]), 403, "permission_denied")
            assert ok(call(one, "agora.schedules.get", schedule=mine["name"]))["status"] == "active"


def test_a_workflow_runs_at_each_tick_until_max_runs(fast_sqlite: HubProcess) -> None:
    with fast_sqlite.client() as admin:
        flow = unique("nightly")
        ok(call(admin, "agora.workflow.define", workflow_name=flow, steps=[{"name": "report", "required_capabilities": ["reports"], "input": "${input.day}"}]))
        made = schedule(admin, "every 1s", {"workflow": {"workflow_name": flow, "input": {"day": "{{tick}}"}}}, max_runs=2, overlap="allow")
        ended = until(lambda: (s := ok(call(admin, "agora.schedules.get", schedule=made["name"])))["status"] == "ended" and s, "never ended", 10)
        ticks = sorted(history(admin, made["name"]), key=lambda t: t["tick_at"])
        assert ended["runs"] == 2 and [t["run_kind"] for t in ticks] == ["workflow", "workflow"]
        for tick in ticks:
            run = ok(call(admin, "agora.workflow.status", workflow_id=tick["run_id"]))
            assert run["workflow_name"] == flow and tick["run_status"] == run["status"] == "running"


async def test_queued_ticks_whose_run_goes_on_hold_up_none_that_may_go(store: Store) -> None:  # noqa: F811
    """However many schedules wait on runs still going, a round's batch reads only those whose run has ended: a
    tenant's hundred long runs cannot starve another schedule's queued tick (the batch is a few here)."""
    from agora.core.schedules.firing import ENDED
    from agora.core.services.tasks import new_task_row
    from agora.store.ops import schedules as schedule_ops
    from agora.store.schema import schedules as table
    from agora.store.schema import tasks

    now = datetime(2026, 11, 29, 9, tzinfo=timezone.utc)

    def seed(conn: Any) -> None:
        for n, status in enumerate(["pending", "in_progress", "in_progress", "completed"]):
            task = new_task_row("default", "slow", {}, "admin:bootstrap", now, status=status)
            conn.execute(tasks.insert().values(**task))
            conn.execute(table.insert().values(
                schedule_id=f"sched_{n:024d}", tenant_id="default", name=f"s{n}", trigger="every 1s", timezone="UTC", anchor_at=now,
                action={}, overlap="queue", missed="skip", catch_up_max=1, jitter_seconds=0.0, status="active", runs=1,
                next_tick_at=now, next_fire_at=now, queued_tick_at=now - timedelta(seconds=10 - n), last_run_kind="task",
                last_run_id=task["task_id"], created_by="admin:bootstrap", created_at=now, updated_at=now,
            ))  # fmt: skip

    await store.write(seed)
    ready = await store.write(lambda conn: schedule_ops.queued(conn, 2, ENDED))
    assert [s["name"] for s in ready] == ["s3"]  # the three older ones wait on runs still going
    assert await store.read(lambda conn: schedule_ops.any_queued(conn, ENDED))
