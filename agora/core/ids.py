"""Identifiers are ``{prefix}_{16 hex}`` taken from a UUID4: unique without coordination, easy to read."""

from __future__ import annotations

import re
import uuid

PREFIXES = ("agent", "msg", "task", "wf", "svc", "evt", "inst", "key", "ten", "req", "ovr", "sub")
ID_RE = re.compile(r"^(?P<prefix>[a-z]+)_[0-9a-f]{16}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


def is_id(value: str, prefix: str) -> bool:
    m = ID_RE.match(value)
    return bool(m) and m.group("prefix") == prefix
