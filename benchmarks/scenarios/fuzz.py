"""fuzz: Schemathesis over the hub's OpenAPI document, long (the security suite runs the same bounded): cases sent, failures, 5xx answers."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.security.fuzzing import HUB_ARGS, request_statuses, run_schemathesis

from ..bench import Bench
from ..report import ValueRecord, at_most
from ..servers import hub_server
from ..stores import StoreProvider

NAME = "fuzz"
MAX_EXAMPLES = {"default": 100, "quick": 10}
SEED = 2024


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    examples = MAX_EXAMPLES["quick" if bench.profile.load_seconds < 5 else "default"]
    spec = store.fresh()
    bench.step(f"{NAME}: schemathesis, {examples} examples per operation and phase, as the admin")
    with hub_server(spec, *HUB_ARGS) as hub, tempfile.TemporaryDirectory(prefix="agora-bench-fuzz-") as workdir:
        result = run_schemathesis(f"http://127.0.0.1:{hub.port}", spec.admin_key, Path(workdir), max_examples=examples, seed=SEED)
    statuses = request_statuses((spec.data_dir / "hub.log").read_text())
    server_errors = sum(1 for s in statuses if s >= 500)
    failures = 0 if result.returncode == 0 else 1
    bench.add(ValueRecord(
        NAME, store.kind.value, "answers ≥ 500", server_errors, "answers", at_most(server_errors, 0, "0"),
        notes=f"{result.cases:,} cases generated, {len(statuses):,} requests answered",
    ))  # fmt: skip
    bench.add(ValueRecord(
        NAME, store.kind.value, "schemathesis run failed", failures, "", at_most(failures, 0, "passes"),
        notes="" if not failures else result.summary.splitlines()[-1][:200],
    ))  # fmt: skip
