"""The console's live views: what ``/ui/live/<name>`` may push, and what wakes it.

A page module registers its live part with ``@live_view(name, wakes_on, every)``: a function ``(view, params) ->
{fragment name: html}`` used both to render the page and, by ``live.py``, to push the same fragments again when the
hub says something changed. ``wakes_on`` names the changes: ``"events"`` (the hub events of the principal's tenant:
agents, tasks, workflows, instances) and/or ``"messages"`` (messages stored in it); ``every`` (seconds) renders it
again anyway that often, for a view that shows time passing (the overview's charts); ``narrow`` may name finer
wake-up keys for the view's parameters (a tail of one agent's inbox is not woken by every message of the tenant).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from .door import View

Fragments = Callable[[View, Mapping[str, str]], Awaitable[dict[str, str]]]
Narrow = Callable[[View, Mapping[str, str]], Awaitable[list[str] | None]]  # None: the sources' keys
Source = Literal["events", "messages"]


@dataclass(frozen=True)
class LiveView:
    fragments: Fragments
    wakes_on: tuple[Source, ...]
    every: float | None
    narrow: Narrow | None


LIVE: dict[str, LiveView] = {}


def live_view(
    name: str, wakes_on: tuple[Source, ...] = ("events",), every: float | None = None, narrow: Narrow | None = None
) -> Callable[[Fragments], Fragments]:
    def register(fragments: Fragments) -> Fragments:
        if name in LIVE:
            raise ValueError(f"two live views named {name!r}")
        LIVE[name] = LiveView(fragments, wakes_on, every, narrow)
        return fragments

    return register
