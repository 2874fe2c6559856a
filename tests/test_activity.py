"""agora.query.activity: what the hub did over time, per tenant, summed over replicas (the overview's charts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agora.bus import Event
from agora.core.activity import Activity, Bucket, bucket_of, series

from .conftest import call, expect_error, new_tenant, ok, unique, until
from .hubproc import HubProcess


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


def test_buckets_are_written_once_over_and_add_up_with_what_is_still_in_memory() -> None:
    clock = FixedClock(datetime(2026, 11, 25, 12, 0, 3, tzinfo=UTC))
    activity = Activity(clock)  # type: ignore[arg-type]
    activity.count("t1", "messages", 3)
    activity.call("t1", 200, 0.0008)
    activity.call("t1", 404, 0.004)
    activity.call("t1", 500, 0.2)
    activity.saw([Event("task_completed", "t1"), Event("task_dead_lettered", "t1"), Event("agent_updated", "t1")])
    assert activity.take_finished() == []  # the bucket is not over yet

    clock.at += timedelta(seconds=10)
    activity.count("t2", "messages")
    rows = activity.take_finished()
    assert [(r["tenant_id"], r["messages"], r["calls"], r["rejected"], r["failed"]) for r in rows] == [("t1", 3, 3, 1, 1)]
    assert (rows[0]["tasks_done"], rows[0]["tasks_failed"], rows[0]["lat_1"], rows[0]["lat_5"], rows[0]["lat_250"]) == (1, 1, 1, 1, 1)
    stored = bucket_of(rows[0])
    assert stored.percentile_ms(0.5) == 5 and stored.percentile_ms(0.95) == 250
    assert [t for t, _ in activity.unwritten(None, clock.at - timedelta(minutes=1))] == [datetime(2026, 11, 25, 12, 0, 10, tzinfo=UTC)]

    activity.restore(rows)  # a write that failed: the rows wait in memory for the next round
    assert sum(b.counts["messages"] for _, b in activity.unwritten("t1", clock.at - timedelta(minutes=1))) == 3


def test_a_series_has_every_point_and_sums_buckets_into_longer_steps() -> None:
    start = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    one, two = Bucket(), Bucket()
    one.counts["messages"], two.counts["messages"] = 2, 5
    points = series([(start, one), (start + timedelta(seconds=10), two)], start, start + timedelta(seconds=50), 20)
    assert [(at.second, b.counts["messages"]) for at, b in points] == [(0, 7), (20, 0), (40, 0)]
    assert Bucket().percentile_ms(0.5) is None


def test_messages_tasks_and_calls_show_at_once_for_their_tenant_only(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        mine, theirs = new_tenant(admin, sqlite_hub), new_tenant(admin, sqlite_hub)
    with mine, theirs:
        agent = ok(call(mine, "agora.agents.register", agent_name=unique()))
        for n in range(3):
            ok(call(mine, "agora.messaging.send", to_agent=agent["agent_id"], content={"n": n}))
        ok(call(mine, "agora.task.assign", task_type="activity.demo", assignee=agent["agent_id"], payload={}))
        expect_error(call(mine, "agora.task.get", task_id="task_" + "0" * 24), 404, "not_found")

        def totals(client: object, **args: object) -> dict[str, int]:
            report = ok(call(client, "agora.query.activity", **args))  # type: ignore[arg-type]
            assert report["step_seconds"] == 10 and len(report["points"]) == 360
            return {k: sum(p[k] for p in report["points"]) for k in ("messages", "tasks_created", "calls", "rejected")}

        seen = totals(mine)
        assert seen["messages"] == 3 and seen["tasks_created"] == 1 and seen["rejected"] == 1 and seen["calls"] >= 6
        assert totals(theirs)["messages"] == 0
        expect_error(call(theirs, "agora.query.activity", tenant="default"), 404, "not_found")
        expect_error(call(mine, "agora.query.activity", minutes=1), 422, "invalid_argument")


def test_the_admin_sees_every_tenant_and_a_day_has_longer_steps(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        ok(call(admin, "agora.messaging.send", to_agent=ok(call(admin, "agora.agents.register", agent_name=unique()))["agent_id"], content="x"))
        report = ok(call(admin, "agora.query.activity", minutes=1440))
        assert report["step_seconds"] == 240 and len(report["points"]) == 360
        until(lambda: sum(p["messages"] for p in ok(call(admin, "agora.query.activity"))["points"]) >= 1, "the admin sees the message")
