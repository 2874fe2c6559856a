"""An agent sending a message every 20 ms through a hub while a test breaks its database: every answer counted by
status (0: timed out), each acknowledged message id kept, each 503 without ``Retry-After`` noted."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx

from ..conftest import call, ok, unique
from ..hubproc import HubProcess


class SteadySends:
    def __init__(self, hub: HubProcess) -> None:
        with hub.client() as admin:
            self.sender = ok(call(admin, "agora.agents.register", agent_name=unique("sender")))
            self.sink = ok(call(admin, "agora.agents.register", agent_name=unique("sink")))
        self.hub = hub
        self.statuses: Counter[int] = Counter()
        self.acknowledged: list[str] = []
        self.missing_retry_after: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send)

    def __enter__(self) -> SteadySends:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _send(self) -> None:
        with self.hub.client(self.sender["agent_token"]) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    answer = call(client, "agora.messaging.send", to_agent=self.sink["agent_id"], content=f"m{n}", idempotency_key=f"k{n}")
                except httpx.TimeoutException:
                    self.statuses[0] += 1
                    continue
                self.statuses[answer.status_code] += 1
                if answer.status_code == 200:
                    self.acknowledged.append(answer.json()["message_id"])
                elif answer.status_code == 503 and "retry-after" not in answer.headers:
                    self.missing_retry_after.append(n)
                time.sleep(0.02)

    def recovered_within(self, seconds: float) -> float | None:
        """Seconds from now until a send succeeds again; None if none did within ``seconds``."""
        back = time.monotonic()
        while time.monotonic() - back < seconds:
            before = self.statuses[200]
            time.sleep(0.1)
            if self.statuses[200] > before:
                return time.monotonic() - back
        return None

    def stored(self) -> set[str]:
        """The ids of the messages the hub has for the sink now."""
        with self.hub.client() as admin:
            return {m["message_id"] for m in ok(call(admin, "agora.messaging.search", to_agent=self.sink["agent_id"], limit=500))["messages"]}
