"""A bound on how long ``agora serve`` and ``agora host`` take to stop, whatever is in flight.

Once shutdown begins, a daemon thread waits ``--shutdown-timeout`` seconds; if the process is still there then, it
kills every process group its hosting node started (instances, builds) and ends the process with exit code 1. A
thread, not a task: what holds a shutdown up may be the event loop itself, or a thread the interpreter would wait for.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("agora")

EXIT_TIMED_OUT = 1


class ShutdownDeadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._armed = threading.Event()

    def arm(self) -> None:
        """Shutdown has begun: the process ends within ``seconds``. Idempotent, safe from a signal handler."""
        if not self._armed.is_set():
            self._armed.set()
            threading.Thread(target=self._expire, name="agora-shutdown-deadline", daemon=True).start()

    def arm_when(self, begun: Callable[[], bool], poll: float = 0.1) -> None:
        """Arm once ``begun()`` is true (e.g. a uvicorn server's ``should_exit``), checked every ``poll`` seconds."""

        def watch() -> None:
            while not begun():
                if self._armed.wait(poll):  # armed meanwhile (by a signal): nothing left to watch for
                    return
            self.arm()

        threading.Thread(target=watch, name="agora-shutdown-watch", daemon=True).start()

    def _expire(self) -> None:
        threading.Event().wait(self.seconds)
        processes = sys.modules.get("agora.hosting.processes")  # imported only where a node runs
        killed = processes.kill_all_groups() if processes is not None else 0
        log.error(
            "shutdown did not finish within %g s: killed %d process group(s) still running, exiting",
            self.seconds, killed, extra={"shutdown_timeout": self.seconds},
        )  # fmt: skip
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_TIMED_OUT)
