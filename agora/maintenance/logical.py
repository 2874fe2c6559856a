"""Agora's logical backup: a store's tables as one gzip-compressed stream of JSON lines, engine-independent.

It is what ``agora backup --format logical`` writes (the way to back up a PostgreSQL store with Agora alone) and
``agora restore`` reads into either engine, through the same fill-and-verify path as ``agora store copy``::

    {"format": "agora-logical-backup", "version": 1, "revision": "0022", "source": "postgresql", "created_at": …}
    {"table": "tenants", "columns": ["tenant_id", "name", "created_at"], "rows": 2}
    ["default", "default", "2026-05-01T10:00:00.123456+00:00"]
    …
    {"end": "tenants", "rows": 2, "digest": "…"}
    …                                                  (every table of the schema, parents first)
    {"summary": {"revision": "0022", "tables": {…}, "sequences": {"messages": 1000000, …}}}

A row is a JSON array of its columns in the table's order: JSON columns as their JSON text (a string; SQL NULL is
``null``), timestamps as RFC 3339 in UTC, binary as base64, a float that is not finite as its name. Reading checks each
table's count and digest against its ``end`` line and the summary, so a truncated or altered file is refused.
"""

from __future__ import annotations

import base64
import gzip
import math
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Column, Table

from agora import __version__
from agora.store import migrate
from agora_sdk.errors import FailedPrecondition, InvalidArgument

from .checksums import StoreSummary, TableDigest, TableSum, column_kind
from .copy import Sink, VerificationFailed
from .defaults import DEFAULT_BATCH
from .endpoints import TABLES, Row
from .progress import Progress

FORMAT = "agora-logical-backup"
VERSION = 1
GZIP_MAGIC = b"\x1f\x8b"
COMPRESS_LEVEL = 3  # most of level 9's saving on this data, at several times its speed

Convert = Callable[[Any], Any]


def _to_portable(column: Column[Any]) -> Convert | None:
    """A native value → what the file holds (None: orjson writes it as it is, datetimes and dates included)."""
    kind = column_kind(column)
    if kind == "binary":
        return lambda v: base64.b64encode(v).decode()
    if kind == "float":
        return lambda v: v if math.isfinite(v) else repr(v)
    return None


def _from_portable(column: Column[Any]) -> Convert | None:
    return {"datetime": _utc, "date": date.fromisoformat, "binary": base64.b64decode, "float": float}.get(column_kind(column))


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(timezone.utc)


def _converters(table: Table, make: Callable[[Column[Any]], Convert | None]) -> list[tuple[int, Convert]]:
    return [(i, f) for i, f in enumerate(make(c) for c in table.columns) if f is not None]


def _apply(row: list[Any], converters: list[tuple[int, Convert]]) -> list[Any]:
    for i, f in converters:
        if row[i] is not None:
            row[i] = f(row[i])
    return row


def _line(value: Any) -> bytes:
    return orjson.dumps(value) + b"\n"


class LogicalWriter:
    """A ``Sink`` that writes the file; ``finish`` adds the summary line that makes it complete."""

    def __init__(self, out: IO[bytes], revision: str, source_dialect: str):
        self.out = out
        self._converters: list[tuple[int, Convert]] = []
        header = {
            "format": FORMAT,
            "version": VERSION,
            "revision": revision,
            "source": source_dialect,
            "agora_version": __version__,
            "created_at": datetime.now(timezone.utc),
        }
        out.write(_line(header))

    def begin_table(self, table: Table, total: int) -> None:
        self._converters = _converters(table, _to_portable)
        self.out.write(_line({"table": table.name, "columns": [c.name for c in table.columns], "rows": total}))

    def rows(self, table: Table, rows: list[Row]) -> None:
        converters = self._converters
        if converters:
            self.out.write(b"".join(_line(_apply(list(r), converters)) for r in rows))
        else:
            self.out.write(b"".join(_line(r) for r in rows))

    def end_table(self, table: Table, result: TableSum) -> None:
        self.out.write(_line({"end": table.name, "rows": result.rows, "digest": result.digest}))

    def finish(self, summary: StoreSummary) -> None:
        self.out.write(_line({"summary": summary.to_json()}))


def open_for_writing(path: Path) -> IO[bytes]:
    return gzip.open(path, "wb", compresslevel=COMPRESS_LEVEL)


class LogicalSource:
    """A logical backup file as a ``Source``: its header is checked on opening, each table as it is read."""

    def __init__(self, path: Path, batch: int = DEFAULT_BATCH):
        self.path = path
        self.batch = batch
        with gzip.open(path, "rb") as f:
            header = self._header(f)
        self.revision: str = header["revision"]
        self.source_dialect: str = header.get("source", "?")
        self.created_at: str = header.get("created_at", "?")

    def _header(self, f: IO[bytes]) -> dict[str, Any]:
        try:
            header = orjson.loads(f.readline())
        except (OSError, EOFError, orjson.JSONDecodeError):
            raise InvalidArgument(f"{self.path} is not an Agora logical backup") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InvalidArgument(f"{self.path} is not an Agora logical backup")
        if header.get("version") != VERSION:
            raise InvalidArgument(f"{self.path} is a version {header.get('version')} backup; this Agora reads version {VERSION}")
        head = migrate.head_revision()
        if header.get("revision") != head:
            raise FailedPrecondition(
                f"{self.path} holds a store at schema revision {header.get('revision')} and this Agora is at {head}: "
                "restore it with the Agora version that made it, then upgrade",
                details={"revision": header.get("revision"), "head": head},
            )
        return header

    def pump(self, sink: Sink | None, progress: Progress) -> StoreSummary:
        try:
            with gzip.open(self.path, "rb") as f:
                self._header(f)
                lines = iter(f)
                summary = StoreSummary(self.revision)
                for table in TABLES:
                    summary.tables[table.name] = self._table(table, lines, sink, progress)
                written = self._expect(next(lines, b""), "summary")
        except (OSError, EOFError, orjson.JSONDecodeError) as exc:
            raise VerificationFailed(f"{self.path} is damaged: {exc}") from None
        recorded = StoreSummary.from_json(written["summary"])
        summary.sequences = recorded.sequences  # the file's word for them: they are no rows to count
        differences = recorded.differences(summary)
        if differences:
            raise VerificationFailed(f"{self.path} does not hold what it says it does: {'; '.join(differences[:5])}")
        return summary

    def _table(self, table: Table, lines: Iterator[bytes], sink: Sink | None, progress: Progress) -> TableSum:
        start = self._expect(next(lines, b""), "table")
        columns = [c.name for c in table.columns]
        if start["table"] != table.name or start["columns"] != columns:
            raise VerificationFailed(f"{self.path}: expected table {table.name} with columns {columns}, found {start['table']} {start['columns']}")
        progress.phase(table.name, start.get("rows"))
        if sink is not None:
            sink.begin_table(table, int(start.get("rows") or 0))
        converters = _converters(table, _from_portable)
        digest = TableDigest(table)
        batch: list[Row] = []
        for line in lines:
            if not line.startswith(b"["):
                end = self._expect(line, "end")
                break
            batch.append(tuple(_apply(orjson.loads(line), converters)))
            if len(batch) >= self.batch:
                self._deliver(table, batch, digest, sink, progress)
                batch = []
        else:
            raise VerificationFailed(f"{self.path} ends inside table {table.name}: the backup is incomplete")
        self._deliver(table, batch, digest, sink, progress)
        result = digest.result()
        if end["end"] != table.name or end["rows"] != result.rows or end["digest"] != result.digest:
            raise VerificationFailed(f"{self.path}: table {table.name} does not match its recorded count and digest")
        if sink is not None:
            sink.end_table(table, result)
        return result

    @staticmethod
    def _deliver(table: Table, batch: list[Row], digest: TableDigest, sink: Sink | None, progress: Progress) -> None:
        if not batch:
            return
        digest.add(batch)
        if sink is not None:
            sink.rows(table, batch)
        progress.advance(len(batch))

    def _expect(self, line: bytes, key: str) -> dict[str, Any]:
        if not line:
            raise VerificationFailed(f"{self.path} is incomplete (it ends before its {key} line)")
        value = orjson.loads(line)
        if not isinstance(value, dict) or key not in value:
            raise VerificationFailed(f"{self.path}: expected a {key} line, found {line[:80]!r}")
        return value
