"""Identifiers are ``{prefix}_{16 hex}``: 64 random bits, unique without coordination, easy to read.

They name things, they grant nothing (access is checked on every call; secrets such as keys and lease tokens come
from ``secrets``), so they are drawn from a per-process generator seeded from the OS: a system call per id (as
uuid4 makes) costs more than the rest of building a message.
"""

from __future__ import annotations

import os
import random
import re

PREFIXES = ("agent", "msg", "task", "wf", "svc", "evt", "inst", "key", "ten", "req", "ovr", "sub", "lst", "node")
ID_RE = re.compile(r"^(?P<prefix>[a-z]+)_[0-9a-f]{16}$")


_bits = random.Random(os.urandom(32)).getrandbits


def new_id(prefix: str) -> str:
    return f"{prefix}_{_bits(64):016x}"


def is_id(value: str, prefix: str) -> bool:
    m = ID_RE.match(value)
    return bool(m) and m.group("prefix") == prefix
