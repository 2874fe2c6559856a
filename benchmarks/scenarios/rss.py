"""rss: resident memory of an idle hub, right after start and after a register load."""

from __future__ import annotations

import time

from ..bench import Bench, agent_count
from ..report import ValueRecord, at_most
from ..servers import hub_server
from ..stores import StoreProvider
from .register import register_load

NAME = "rss"
TARGET_MIB = 120.0


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    spec = store.fresh()
    with hub_server(spec) as hub:
        time.sleep(bench.profile.settle_seconds)
        idle = hub.memory_kb()
        load = register_load(bench, hub, spec)
        time.sleep(bench.profile.settle_seconds)
        after = hub.memory_kb()
        stored = agent_count(hub, spec)
    for label, memory, notes in (
        ("idle RSS after start", idle, ""),
        ("idle RSS after register load", after, f"after {load.requests:,} registrations ({stored:,} agents stored)"),
    ):
        mib = memory["VmRSS"] / 1024
        peak = f"peak {memory['VmHWM'] / 1024:.1f} MiB"
        bench.add(
            ValueRecord(
                NAME,
                store.kind.value,
                label,
                mib,
                "MiB",
                at_most(mib, TARGET_MIB, f"≤ {TARGET_MIB:g} MiB"),
                notes=f"{notes}; {peak}" if notes else peak,
            )
        )
