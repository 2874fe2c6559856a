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
