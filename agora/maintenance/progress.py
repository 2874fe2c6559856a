"""How a long store operation reports progress: phases (a table, the pages of a backup) with a total, then advances.
The CLI draws them as a Rich progress bar; a caller that wants nothing passes ``SILENT``."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def phase(self, label: str, total: int | None) -> None:
        """A new phase starts: ``total`` units of work (None: unknown)."""

    def advance(self, done: int) -> None:
        """``done`` more units of the current phase are finished."""


class _Silent:
    def phase(self, label: str, total: int | None) -> None:
        return None

    def advance(self, done: int) -> None:
        return None


SILENT: Progress = _Silent()
