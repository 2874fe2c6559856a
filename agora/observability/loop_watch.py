"""How late the hub's event loop runs, and what held it up when it stalled.

Every request, stream and lease renewal of a replica shares one event loop: one call that blocks it (CPU work, a
synchronous read, a slow C call) delays them all. A ticker on the loop measures how late each of its ticks comes
(``agora_event_loop_lag_seconds``); a watchdog thread logs a warning with the loop thread's stack when a tick is more
than ``STALL_SECONDS`` late, once per stall, so that the culprit is named rather than guessed. (Building an HTTP
client on the loop, ~45 ms of CA bundle each, was found this way.)
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

from . import metrics

log = logging.getLogger("agora.loop")

TICK_SECONDS = 0.1
STALL_SECONDS = 0.25
STACK_FRAMES = 12


class LoopWatch:
    """``run`` on the loop to watch (one watch per loop; it stops its watchdog when cancelled)."""

    def __init__(self, stall_seconds: float = STALL_SECONDS):
        self.stall_seconds = stall_seconds
        self._tick_began = time.monotonic()
        self._stopped = threading.Event()
        self._loop_thread = 0

    async def run(self) -> None:
        self._loop_thread = threading.get_ident()
        watchdog = threading.Thread(target=self._watch, name="agora-loop-watch", daemon=True)
        watchdog.start()
        try:
            while True:
                self._tick_began = began = time.monotonic()
                await asyncio.sleep(TICK_SECONDS)
                metrics.EVENT_LOOP_LAG.observe(max(0.0, time.monotonic() - began - TICK_SECONDS))
        finally:
            self._stopped.set()

    def _watch(self) -> None:
        reported = None
        while not self._stopped.wait(self.stall_seconds / 2):
            began = self._tick_began
            late = time.monotonic() - began - TICK_SECONDS
            if late <= self.stall_seconds or began == reported:
                continue
            reported = began
            frame = sys._current_frames().get(self._loop_thread)  # noqa: SLF001 - the one way to see another thread's stack
            stack = "".join(traceback.format_stack(frame, limit=STACK_FRAMES)) if frame is not None else "(gone)"
            log.warning("event loop stalled", extra={"stalled_ms": round(late * 1000), "stack": stack})
