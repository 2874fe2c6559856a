"""The notifier: wakes and fans out. It never holds the truth; the store does."""

from .base import Event, Notifier
from .memory import InProcessNotifier

__all__ = ["Event", "Notifier", "InProcessNotifier"]
