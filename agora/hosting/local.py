"""``agora serve``'s own hosting node: the hub's server, plus a node that starts once the hub listens and stops as soon
as shutdown begins (so its parked claims do not hold up the graceful shutdown and its instances stop before the hub).

The node (and the SDK client it is built on) is made only once the hub is ready: the hub's cold start does not pay
for importing it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from agora.app import HubServer
from agora_sdk.errors import AgoraError

from .sandbox import SandboxError

if TYPE_CHECKING:
    from .node import HostingNode

log = logging.getLogger("agora.hosting")


class ServerWithNode(HubServer):
    def __init__(self, config: uvicorn.Config, make_node: Callable[[], HostingNode]):
        super().__init__(config)
        self.make_node = make_node
        self.node: HostingNode | None = None

    async def _serve(self, sockets: list[socket.socket] | None = None) -> None:
        """Within ``serve``'s signal capture: uvicorn re-raises a captured SIGTERM once that ends, which would kill the
        process before the node has stopped its instances."""
        running = asyncio.create_task(self._run_node())
        try:
            await super()._serve(sockets)
        finally:
            self.should_exit = True
            await running

    async def _run_node(self) -> None:
        while not self.started:
            if self.should_exit:
                return
            await asyncio.sleep(0.05)
        self.node = self.make_node()
        starting = asyncio.create_task(self._start_node(self.node))
        while not self.should_exit and not (starting.done() and not starting.result()):
            await asyncio.sleep(0.1)
        if not starting.done():  # shutdown began while the node was still starting (its hub may be gone already)
            starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await self.node.stop()

    async def _start_node(self, node: HostingNode) -> bool:
        attempt = 0
        while not self.should_exit:
            try:
                await node.start()
                return True
            except AgoraError as exc:  # e.g. the hub's store not ready: try again, a bit later each time
                log.warning("local hosting node could not start: %s", exc.message)
            except SandboxError as exc:  # this machine cannot run listing code so: the hub serves on, and says why
                log.error("local hosting node not started (marketplace instances cannot run here): %s", exc)
                return False
            except Exception:  # the hub serves on without its node; the log says why
                log.exception("local hosting node failed to start")
                return False
            attempt += 1
            await asyncio.sleep(min(5.0, 0.2 * 2**attempt))
        return False


def loopback_url(host: str, port: int) -> str:
    """How a node in the hub's own process reaches it: loopback unless the hub listens on one address only."""
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{'[' + reachable + ']' if ':' in reachable else reachable}:{port}"
