"""Operability: one structured log line per request, Prometheus metrics, request ids."""

from __future__ import annotations

import json

from .conftest import call, ok, unique, until


def test_one_json_log_line_per_request_with_id_principal_tool_status_duration(sqlite_hub):
    with sqlite_hub.client() as admin:
        r = admin.post("/agora/agents/register", json={"agent_name": unique()}, headers={"X-Request-ID": "trace-me-123"})
        ok(r)
        assert r.headers["x-request-id"] == "trace-me-123"
        missing = call(admin, "agora.agents.get", agent="nobody-here")
        assert missing.status_code == 404
        generated = missing.headers["x-request-id"]

    def logged() -> dict[str, dict]:  # a request's line is written once its answer has gone out: maybe just after
        lines = [json.loads(line) for line in sqlite_hub.log_path.read_text().splitlines() if line.startswith("{")]
        requests = {line.get("request_id"): line for line in lines if line.get("msg") == "request"}
        return requests if {"trace-me-123", generated} <= requests.keys() else {}

    requests = until(logged, "both requests logged", timeout=10)
    mine = requests["trace-me-123"]
    assert mine["tool"] == "agora.agents.register" and mine["status"] == 200
    assert mine["principal"] == "admin:bootstrap" and mine["duration_ms"] > 0
    assert mine["method"] == "POST" and mine["path"] == "/agora/agents/register" and mine["level"] == "info"
    assert requests[generated]["status"] == 404 and generated.startswith("req_")


def _sample(text: str, name: str) -> float:
    return next(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def test_metrics_count_calls_by_tool_and_outcome_and_agents_by_status(sqlite_hub):
    requests_404 = 'agora_http_requests_total{method="POST",status="404"}'
    with sqlite_hub.client() as admin:
        ok(call(admin, "agora.agents.register", agent_name=unique()))
        assert call(admin, "agora.agents.get", agent="nobody-here").status_code == 404
        before = admin.get("/metrics").text
        assert call(admin, "agora.agents.get", agent="nobody-here").status_code == 404
        assert call(admin, "agora.agents.get", agent="nobody-here").status_code == 404
        text = admin.get("/metrics").text
    assert _sample(text, requests_404) == _sample(before, requests_404) + 2
    calls_404 = 'agora_tool_calls_total{outcome="not_found",tool="agora.agents.get"}'
    assert _sample(text, calls_404) == _sample(before, calls_404) + 2
    assert 'agora_tool_calls_total{outcome="ok",tool="agora.agents.register"}' in text
    assert 'agora_tool_calls_total{outcome="not_found",tool="agora.agents.get"}' in text
    assert 'agora_tool_duration_seconds_bucket{le="0.005",tool="agora.agents.register"}' in text
    assert 'agora_agents{status="active"}' in text
    assert _sample(text, "agora_event_loop_lag_seconds_count") > 0  # the hub's loop is watched


def test_metrics_time_each_store_write_and_count_those_in_flight(hub):
    """Every write is timed from its ask to its commit, on both engines; SQLite's group commits are counted by size.
    Several writes sent at once are all timed, and none is left counted in flight once answered."""
    with hub.client() as admin:
        before = admin.get("/metrics").text
        writes = 0
        for _ in range(3):
            ok(call(admin, "agora.agents.register", agent_name=unique()))
            writes += 1
        text = admin.get("/metrics").text
    timed = _sample(text, "agora_store_write_seconds_count") - _sample(before, "agora_store_write_seconds_count")
    assert timed >= writes  # each registration is a write (the hub's own jobs may write meanwhile)
    assert _sample(text, "agora_store_write_seconds_sum") > _sample(before, "agora_store_write_seconds_sum")
    assert _sample(text, 'agora_store_write_seconds_bucket{le="+Inf"}') == _sample(text, "agora_store_write_seconds_count")
    assert _sample(text, "agora_store_writes_in_flight") >= 0
    if hub.database_url is None:  # SQLite
        commits = _sample(text, "agora_store_group_commit_operations_count") - _sample(before, "agora_store_group_commit_operations_count")
        assert 1 <= commits <= timed  # a commit takes one write or more
    else:
        assert _sample(text, "agora_store_group_commit_operations_count") == 0  # PostgreSQL commits each write itself


async def test_a_stalled_event_loop_is_measured_and_logged_with_what_held_it(caplog):
    """One blocking call holds up every request of a replica: the lag is a metric, and a stall is logged with the
    loop thread's stack (here the function that slept), once."""
    import asyncio
    import logging
    import time

    from agora.observability import metrics
    from agora.observability.loop_watch import LoopWatch

    def slow_synchronous_call() -> None:
        time.sleep(0.5)

    def ticks_late_by_more_than_a_quarter_second() -> float:
        samples = metrics.EVENT_LOOP_LAG.collect()[0].samples
        every = next(s.value for s in samples if s.name.endswith("_count"))
        return every - next(s.value for s in samples if s.name.endswith("_bucket") and s.labels["le"] == "0.25")

    watch = asyncio.create_task(LoopWatch(stall_seconds=0.2).run())
    before = ticks_late_by_more_than_a_quarter_second()
    with caplog.at_level(logging.WARNING, logger="agora.loop"):
        await asyncio.sleep(0.35)
        slow_synchronous_call()
        await asyncio.sleep(0.35)
    watch.cancel()
    await asyncio.gather(watch, return_exceptions=True)
    stalls = [r for r in caplog.records if r.getMessage() == "event loop stalled" and "slow_synchronous_call" in r.stack]
    assert len(stalls) == 1 and stalls[0].stalled_ms >= 200, stalls
    assert ticks_late_by_more_than_a_quarter_second() >= before + 1
