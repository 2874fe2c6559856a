"""What a conversation remembers between turns, kept small: the recent turns (the user's words, the intent, the
tools used and a short summary of their results), the last result list ("the second one") and the entry the
conversation is about ("it"). Names and ids only: no tool output is kept whole, and never a secret."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

MAX_TURNS = 8  # older turns are forgotten
MAX_RESULTS = 10  # the last result list, as far as "the tenth one" reaches
MAX_TEXT = 600  # characters kept of a message or an answer
LIFETIME = timedelta(hours=24)  # a conversation untouched this long is forgotten


@dataclass(frozen=True)
class Entry:
    """Something a conversation talked about: a listing or a registered agent."""

    kind: str  # listing, agent
    id: str
    name: str


@dataclass(frozen=True)
class Turn:
    message: str
    intent: str
    response: str
    tools: list[str]


@dataclass
class Memory:
    turns: list[Turn] = field(default_factory=list)
    results: list[Entry] = field(default_factory=list)
    focus: Entry | None = None

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> Memory:
        if not stored:
            return cls()
        focus = stored.get("focus")
        return cls(
            turns=[Turn(**t) for t in stored.get("turns", [])],
            results=[Entry(**e) for e in stored.get("results", [])],
            focus=Entry(**focus) if focus else None,
        )

    def stored(self) -> dict[str, Any]:
        return {"turns": [asdict(t) for t in self.turns], "results": [asdict(e) for e in self.results],
                "focus": asdict(self.focus) if self.focus else None}  # fmt: skip

    def at(self, position: int) -> Entry | None:
        """The entry at ``position`` of the last results (-1: the last one)."""
        try:
            return self.results[position]
        except IndexError:
            return None

    def about(self) -> Entry | None:
        """What "it" means: the entry the conversation is about, else the one result there was."""
        return self.focus or (self.results[0] if len(self.results) == 1 else None)


@dataclass(frozen=True)
class Outcome:
    """What a turn adds to the memory."""

    turn: Turn
    results: list[Entry] | None = None  # a new result list (None: the last one stays)
    focus: Entry | None = None  # the entry the turn was about (None: unchanged)

    def applied_to(self, stored: dict[str, Any] | None) -> dict[str, Any]:
        """The stored memory after this turn (the store calls this inside the transaction that writes it)."""
        memory = Memory.of(stored)
        clipped = Turn(self.turn.message[:MAX_TEXT], self.turn.intent, self.turn.response[:MAX_TEXT], self.turn.tools)
        memory.turns = [*memory.turns, clipped][-MAX_TURNS:]
        if self.results is not None:
            memory.results = self.results[:MAX_RESULTS]
            memory.focus = self.results[0] if len(self.results) == 1 else memory.focus
        if self.focus is not None:
            memory.focus = self.focus
        return memory.stored()
