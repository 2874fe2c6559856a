"""Schemathesis against a hub's own OpenAPI document (the security suite runs it bounded; ``python -m benchmarks
fuzz`` runs it long).

The checks are the ones about answers: no 5xx, every status, content type, header and body as documented, and no
operation that answers without a valid key. (Whether the documented schema is as strict as the validation behind
it — a ``0`` accepted for a boolean, say — is left out: pydantic's lax mode is what lets query parameters be read.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "ignored_auth",
)
# What a hub under fuzzing runs with: thousands of requests a minute from one address, many with wrong keys on
# purpose (ignored_auth), must be answered rather than braked (the brake and the limits have their own tests).
HUB_ARGS = ("--auth-failure-rate", "off", "--auth-lockout-after", "1000000", "--rate-limit", "anonymous=off")
# Left out: an execute on an instance the stateful phase created waits as long as its timeout asks (up to an hour,
# as the API allows) for a task nobody takes, longer than any request timeout (tests/test_marketplace.py covers it);
# and a watch of a task the stateful phase assigned waits as long as it asks (up to 60 s) for output nobody emits,
# which took the run from 40 s past its 5 minutes (tests/test_task_output.py covers it).
EXCLUDED_PATHS = ("/marketplace/instances/{instance_id}/execute", "/agora/task/watch")


_STATUS = re.compile(r'"msg":"request".*?"status":(\d{3})')


def request_statuses(hub_log: str) -> list[int]:
    """The status of every request in a hub's log (its one line per request)."""
    return [int(m.group(1)) for m in _STATUS.finditer(hub_log)]


@dataclass(frozen=True)
class FuzzResult:
    returncode: int
    cases: int  # test cases generated and sent
    output: str

    @property
    def summary(self) -> str:
        """The run's summary, and the section that says what went wrong (failures, errors) when there is one."""
        for heading in ("FAILURES", "ERRORS", "SUMMARY"):
            if heading in self.output:
                return self.output[self.output.find(heading) :][-8000:]
        return self.output[-4000:]


ALL_PHASES = "examples,coverage,fuzzing,stateful"
QUICK_PHASES = "examples,fuzzing,stateful"  # the coverage phase's boundary cases are the long run's: ~4x the cases


def run_schemathesis(
    url: str, key: str, workdir: Path, *, max_examples: int, seed: int, phases: str = ALL_PHASES, workers: int = 1,
    timeout: float = 3600,
) -> FuzzResult:
    """``st run`` over ``url``'s ``/openapi.json`` as the holder of ``key``.

    One worker: with two, Hypothesis describing its strategies parses source in both threads at once, which this
    machine's CPython 3.11.7 sometimes fails in its AST constructor ("SystemError: AST constructor recursion depth
    mismatch", CPython gh-106905): a run error with every case passed. One worker is no slower here."""
    st = Path(sys.executable).parent / "st"
    args = [
        str(st), "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {key}",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(max_examples),
        "--phases", phases,
        "--seed", str(seed),
        "--workers", str(workers),
        "--no-shrink",
        "--request-timeout", "75",  # over the longest long-poll a request may ask for (wait ≤ 60 s): not a network error
        *(arg for path in EXCLUDED_PATHS for arg in ("--exclude-path", path)),
        "--warnings", "off",
    ]  # fmt: skip
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    output = done.stdout + done.stderr
    generated = re.search(r"(\d+) generated", output)
    return FuzzResult(done.returncode, int(generated.group(1)) if generated else 0, output)
