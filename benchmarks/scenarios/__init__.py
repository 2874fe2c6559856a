"""The scenarios, in the order a full run takes them."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

from ..bench import Bench
from ..stores import StoreProvider
from . import a2a, ceiling, chaos, coldstart, console, fuzz, marketplace, mcp, money, output, people, query, quickstart, ratings, register, replicas, retention, rss, schedules, sdk, search, security, send, storecopy, streams, tasks, typescript, workflows


@dataclass(frozen=True)
class Scenario:
    module: ModuleType  # defines NAME and run(bench, store)
    per_store: bool  # run once per store of --store (else once per run)

    @property
    def name(self) -> str:
        return str(self.module.NAME)

    @property
    def summary(self) -> str:
        return (self.module.__doc__ or "").strip().splitlines()[0]

    def run(self, bench: Bench, store: StoreProvider | None) -> None:
        self.module.run(bench, store)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(ceiling, per_store=False),
        Scenario(register, per_store=True),
        Scenario(query, per_store=True),
        Scenario(send, per_store=True),
        Scenario(streams, per_store=True),
        Scenario(tasks, per_store=True),
        Scenario(workflows, per_store=True),
        Scenario(schedules, per_store=True),
        Scenario(output, per_store=True),
        Scenario(sdk, per_store=True),
        Scenario(typescript, per_store=True),
        Scenario(mcp, per_store=True),
        Scenario(a2a, per_store=True),
        Scenario(marketplace, per_store=True),
        Scenario(console, per_store=True),
        Scenario(quickstart, per_store=False),
        Scenario(coldstart, per_store=True),
        Scenario(rss, per_store=True),
        Scenario(security, per_store=True),
        Scenario(people, per_store=True),
        Scenario(money, per_store=True),
        Scenario(fuzz, per_store=True),
        Scenario(storecopy, per_store=True),
        Scenario(retention, per_store=True),
        Scenario(replicas, per_store=True),
        Scenario(search, per_store=True),
        Scenario(ratings, per_store=True),
        Scenario(chaos, per_store=True),
    )
}
