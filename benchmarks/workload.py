"""The agents the benchmarks register: unique names and a spread of capabilities.

Agent ``i`` has 1-5 of ``DISTINCT_CAPABILITIES`` capabilities (``cap-0`` … ``cap-49``), picked by a
small arithmetic hash so that Python (seeding, Python generator) and Lua (wrk) produce the same
distribution: each capability is held by about 6% of the agents.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from .http import Connection, build_request

DISTINCT_CAPABILITIES = 50
MAX_CAPABILITIES = 5
_N_MULT, _START_MULT, _STEP = 7919, 104729, 11  # _STEP is coprime with 50: the picks never repeat

REGISTER_PATH = "/agora/agents/register"


def capabilities_for(index: int) -> list[str]:
    count = 1 + (index * _N_MULT) % MAX_CAPABILITIES
    start = (index * _START_MULT) % DISTINCT_CAPABILITIES
    return [f"cap-{(start + k * _STEP) % DISTINCT_CAPABILITIES}" for k in range(count)]


def run_prefix() -> str:
    """A name prefix unique to one load run, so that runs never collide on a shared hub."""
    return f"bench-{secrets.token_hex(3)}-"


@dataclass(frozen=True)
class RegisterBodies:
    """``{"agent_name": <unique>, "capabilities": [...]}``, a new agent per request."""

    prefix: str

    def render(self, index: int) -> bytes:
        body = {"agent_name": f"{self.prefix}{index}", "capabilities": capabilities_for(index)}
        return json.dumps(body, separators=(",", ":")).encode()

    def lua(self) -> str:
        return f"""\
local seq = 0
function request()
  seq = seq + 1
  local i = tid * 100000000 + seq
  local n = 1 + (i * {_N_MULT}) % {MAX_CAPABILITIES}
  local start = (i * {_START_MULT}) % {DISTINCT_CAPABILITIES}
  local caps = {{}}
  for k = 0, n - 1 do
    caps[#caps + 1] = '"cap-' .. string.format("%d", (start + k * {_STEP}) % {DISTINCT_CAPABILITIES}) .. '"'
  end
  return wrk.format(nil, nil, nil, '{{"agent_name":"{self.prefix}' .. string.format("%d", i) ..
    '","capabilities":[' .. table.concat(caps, ",") .. ']}}')
end
"""


@dataclass
class SeedResult:
    registered: int
    failed: int
    seconds: float
    first_error: str | None

    @property
    def rps(self) -> float:
        return self.registered / self.seconds if self.seconds else 0.0


async def seed_agents(
    port: int,
    admin_key: str,
    count: int,
    *,
    concurrency: int,
    timeout: float,
    on_progress: Callable[[int], None] = lambda _n: None,
) -> SeedResult:
    """Register ``count`` new agents with ``concurrency`` keep-alive connections, within ``timeout`` seconds."""
    bodies = RegisterBodies(run_prefix())
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {admin_key}"}
    indexes = itertools.count()
    registered = failed = 0
    first_error: str | None = None
    started = time.perf_counter()
    deadline = started + timeout

    async def connection_loop() -> None:
        nonlocal registered, failed, first_error
        async with Connection(port) as conn:
            while time.perf_counter() < deadline and (i := next(indexes)) < count:
                status, body = await conn.send(build_request("POST", REGISTER_PATH, port, headers, bodies.render(i)))
                if status == 200:
                    registered += 1
                    on_progress(1)
                else:
                    failed += 1
                    first_error = first_error or f"{status} {body[:300].decode(errors='replace')}"

    await asyncio.gather(*(connection_loop() for _ in range(concurrency)))
    return SeedResult(registered, failed, time.perf_counter() - started, first_error)
