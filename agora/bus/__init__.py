"""The notifier: wakes and fans out. It never holds the truth; the store does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Event, Notifier
from .memory import InProcessNotifier

if TYPE_CHECKING:
    from .redis import RedisNotifier

__all__ = ["Event", "InProcessNotifier", "Notifier", "RedisNotifier", "open_notifier"]


def open_notifier(redis_url: str | None, **options: Any) -> Notifier:
    """The in-process notifier for a single hub, the Redis one (``options`` go to it) when replicas share a URL.

    redis is imported only here, so a hub without ``--redis-url`` does not pay for it. Call ``start()`` on the result.
    """
    if not redis_url:
        return InProcessNotifier()
    from .redis import RedisNotifier

    return RedisNotifier(redis_url, **options)


def __getattr__(name: str) -> Any:
    """``from agora.bus import RedisNotifier`` works, importing redis only then."""
    if name == "RedisNotifier":
        from .redis import RedisNotifier

        return RedisNotifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
