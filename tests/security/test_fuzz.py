"""Schemathesis over the hub's OpenAPI document, bounded for CI (``python -m benchmarks fuzz`` is the long run)."""

from __future__ import annotations

from pathlib import Path

from ..hubproc import HubProcess
from .fuzzing import HUB_ARGS, QUICK_PHASES, request_statuses, run_schemathesis

MAX_EXAMPLES = 16  # per operation and phase: ~2,000 cases over the catalog's ~115 operations, ~40 s
SEED = 24


def test_fuzzing_the_api_finds_no_server_error_and_no_answer_off_its_schema(tmp_path: Path):
    hub = HubProcess(tmp_path / "hub", extra_args=list(HUB_ARGS)).start()
    try:
        result = run_schemathesis(hub.url, hub.admin_key, tmp_path, max_examples=MAX_EXAMPLES, seed=SEED, phases=QUICK_PHASES)
    finally:
        hub.stop()
    assert result.cases >= 1500, result.summary
    assert result.returncode == 0, result.summary
    # The hub's own request log agrees: not one answer of 500 or more.
    statuses = request_statuses(hub.log_path.read_text())
    assert len(statuses) >= result.cases and max(statuses) < 500
