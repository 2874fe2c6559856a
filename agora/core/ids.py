"""Identifiers are ``{prefix}_{24 hex}``: 8 hex digits of the second they were made, then 16 random ones.

Random because an id is shown to strangers (an instance's, a task's): one that follows from the last one seen
would let them count a tenant's activity and probe for things that are not theirs. 64 random bits make a collision
as unlikely as it gets (one in ~10^19 per pair made within the same second) and a guess hopeless.

The second comes first so that rows keyed by id (messages, tasks, …) land in their unique indexes where the last
ones did: a fully random key dirtied another index page per row, and SQLite inserts slowed down as tables grew
(500 messages took 5.2 ms with ordered ids and 23 ms with random ones once 230,000 were stored). Within a second
the order is random, which keeps the writes within the index's last pages.

Ids made before, ``{prefix}_{16 hex}``, stay valid everywhere (``agora_sdk.wire.common.ID_HEX``).
"""

from __future__ import annotations

import re
import secrets
import time

from agora_sdk.wire.common import ID_HEX

ID_RE = re.compile(rf"^(?P<prefix>[a-z]+)_{ID_HEX}$")


def new_id(prefix: str) -> str:
    return f"{prefix}_{int(time.time()):08x}{secrets.token_hex(8)}"


def is_id(value: str, prefix: str) -> bool:
    m = ID_RE.match(value)
    return bool(m) and m.group("prefix") == prefix
