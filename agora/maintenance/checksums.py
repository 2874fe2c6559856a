"""Engine-independent checksums of a store: per table, a row count and a digest of every row's canonical form.

Rows are read in their *native* form (``endpoints``): JSON columns as their stored JSON text, timestamps as aware UTC
datetimes, booleans as bools, whatever the engine. The canonical form of a row gives each value one spelling: a JSON
document is its parsed value, wrapped in a list (so that SQL NULL, ``None``, stays apart from JSON ``null``, ``[None]``),
and the row is written with sorted keys (PostgreSQL's JSONB reorders keys and adds spaces; SQLite keeps the text as
written); a JSON number that is whole is an integer (JSON has one kind of number, and the engines spell them their own
ways: SQLite's NUMERIC affinity stores a bare ``1.0`` as the integer 1, JSONB writes ``1e+17`` out in digits); binary
values are base64 and floats that are not finite are their names.

A table's digest is the sum, modulo 2**256, of the SHA-256 of each canonical row: it does not depend on the order
rows are read in (each engine orders text its own way), and rows are unique by primary key, so equal digests mean
equal tables short of a hash collision.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import JSON, Column, Date, DateTime, Float, LargeBinary, Table
from sqlalchemy.types import TypeDecorator

MODULUS = 2**256
_MAY_HOLD_A_FLOAT = re.compile(r"\d[.eE]")  # how a JSON float is written (a string may match too: then it is walked)

Canonical = Callable[[Any], Any]


def canonical_json(text: str | None) -> list[Any] | None:
    """A JSON document as its value, wrapped (None stays SQL NULL, distinct from the JSON ``null``)."""
    if text is None:
        return None
    value = orjson.loads(text)
    return [_whole_numbers(value) if _MAY_HOLD_A_FLOAT.search(text) else value]


def _whole_numbers(value: Any) -> Any:
    """Floats that are whole (and fit 64 bits, as orjson's integers must) become integers, at any depth."""
    if type(value) is float:
        return int(value) if value.is_integer() and -(2**63) <= value < 2**63 else value
    if type(value) is dict:
        return {k: _whole_numbers(v) for k, v in value.items()}
    if type(value) is list:
        return [_whole_numbers(v) for v in value]
    return value


def _binary(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def _float(value: float | None) -> float | str | None:
    return value if value is None or math.isfinite(value) else repr(value)


def column_kind(column: Column[Any]) -> str:
    """What travels differently between engines and files: json, datetime, date, binary, float, or plain."""
    type_ = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    for kind, types in (("json", JSON), ("datetime", DateTime), ("date", Date), ("binary", LargeBinary), ("float", Float)):
        if isinstance(type_, types):
            return kind
    return "plain"


def canonical_of(column: Column[Any]) -> Canonical | None:
    """How a column's native value becomes canonical; None when it already is (orjson writes datetimes and dates)."""
    return {"json": canonical_json, "binary": _binary, "float": _float}.get(column_kind(column))


class TableDigest:
    """Accumulates a table's row count and order-independent digest."""

    def __init__(self, table: Table):
        self.table = table
        self.rows = 0
        self._total = 0
        # (position, converter) of the columns whose native value is not canonical already
        self._converted = [(i, f) for i, f in enumerate(canonical_of(c) for c in table.columns) if f is not None]

    def add(self, rows: Iterable[Sequence[Any]]) -> None:
        converted = self._converted
        total, count = self._total, 0
        for row in rows:
            if converted:
                row = list(row)
                for i, f in converted:
                    row[i] = f(row[i])
            total += int.from_bytes(hashlib.sha256(orjson.dumps(row, option=orjson.OPT_SORT_KEYS)).digest(), "big")
            count += 1
        self._total = total % MODULUS
        self.rows += count

    @property
    def digest(self) -> str:
        return format(self._total, "064x")

    def result(self) -> TableSum:
        return TableSum(self.rows, self.digest)


@dataclass(frozen=True)
class TableSum:
    rows: int
    digest: str


@dataclass
class StoreSummary:
    """What a store holds, engine-independently: its schema revision, each table's count and digest, and the
    high-water mark of each sequence that never hands a number out twice (``endpoints.kept_sequences``)."""

    revision: str | None
    tables: dict[str, TableSum] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)

    def differences(self, other: StoreSummary) -> list[str]:
        """What differs from ``other``, one line each; empty when the two stores hold the same."""
        out = []
        if self.revision != other.revision:
            out.append(f"schema revision {self.revision} ≠ {other.revision}")
        for name in sorted(self.tables.keys() | other.tables.keys()):
            mine, theirs = self.tables.get(name), other.tables.get(name)
            if mine is None or theirs is None:
                out.append(f"table {name} is missing on one side")
            elif mine.rows != theirs.rows:
                out.append(f"table {name}: {mine.rows} rows ≠ {theirs.rows}")
            elif mine.digest != theirs.digest:
                out.append(f"table {name}: same {mine.rows} rows, different contents (digest {mine.digest[:12]}… ≠ {theirs.digest[:12]}…)")
        for name in sorted(self.sequences.keys() | other.sequences.keys()):
            if self.sequences.get(name) != other.sequences.get(name):
                out.append(f"sequence of {name}: {self.sequences.get(name)} ≠ {other.sequences.get(name)}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "tables": {str(name): {"rows": t.rows, "digest": t.digest} for name, t in self.tables.items()},
            "sequences": {str(name): value for name, value in self.sequences.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoreSummary:
        return cls(
            data["revision"],
            {name: TableSum(int(t["rows"]), str(t["digest"])) for name, t in data["tables"].items()},
            {name: int(v) for name, v in data["sequences"].items()},
        )
