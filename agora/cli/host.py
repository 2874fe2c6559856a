"""``agora host``: run a hosting node for a hub (its options are shared with ``agora serve``'s local node)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from agora.hosting.processes import RestartPolicy

NodeName = Annotated[str, typer.Option(envvar="AGORA_NODE_NAME", help="The node's name, unique on the hub.")]
NodeRegion = Annotated[str, typer.Option(envvar="AGORA_NODE_REGION", help="Region placement prefers for listings that ask for it.")]
NodeCpu = Annotated[
    float | None,
    typer.Option(envvar="AGORA_NODE_CAPACITY_CPU", help="CPU cores offered to instances (default: all of them)."),
]
NodeMemory = Annotated[
    int | None,
    typer.Option(envvar="AGORA_NODE_CAPACITY_MEM", help="MB of memory offered to instances (default: 80% of RAM)."),
]
SampleInterval = Annotated[
    float,
    typer.Option(envvar="AGORA_NODE_SAMPLE_INTERVAL", min=0.1, help="Seconds between CPU and memory samples of each instance."),
]

MaxRestarts = Annotated[
    int,
    typer.Option(envvar="AGORA_NODE_MAX_RESTARTS", min=0, help="Restarts of a crashed instance within 5 minutes before it is marked failed."),
]
RestartBackoff = Annotated[
    float,
    typer.Option(envvar="AGORA_NODE_RESTART_BACKOFF", min=0.01, help="Seconds before restarting a crashed instance (doubled each quick crash)."),
]


def restart_policy(max_restarts: int, backoff: float) -> RestartPolicy:
    """Built only when a node is made: the processes module (psutil) is not imported by a hub that never runs one."""
    from agora.hosting.processes import RestartPolicy

    return RestartPolicy(max_restarts=max_restarts, backoff=backoff)


def host(
    hub: Annotated[str, typer.Option("--hub", envvar="AGORA_URL", help="The hub's URL.")] = "http://127.0.0.1:8080",
    key: Annotated[
        str, typer.Option("--key", envvar="AGORA_API_KEY", help="An admin key of the hub: the node registers with it.")
    ] = "",
    name: NodeName = "local",
    region: NodeRegion = "local",
    capacity_cpu: NodeCpu = None,
    capacity_mem: NodeMemory = None,
    sample_interval: SampleInterval = 30.0,
    max_restarts: MaxRestarts = 3,
    restart_backoff: RestartBackoff = 1.0,
    data_dir: Annotated[
        Path, typer.Option("--data-dir", envvar="AGORA_NODE_DATA_DIR", help="Where builds and instance directories live.")
    ] = Path(".agora-node"),
    log_level: Annotated[str, typer.Option(envvar="AGORA_LOG_LEVEL", help="debug, info, warning or error.")] = "info",
    log_format: Annotated[str, typer.Option(envvar="AGORA_LOG_FORMAT", help="json (one object per line) or text.")] = "json",
) -> None:
    """Run a hosting node: it registers with the hub, builds and runs the marketplace instances placed on it, and
    reports their state and resource use. SIGINT/SIGTERM stop it and its instances (they run again when it is back)."""
    from agora.hosting.node import HostingNode
    from agora.observability.logging import configure

    if not key:
        raise typer.BadParameter("give the hub's admin key (or set AGORA_API_KEY)", param_hint="--key")
    configure(log_level, log_format)
    node = HostingNode(
        hub, key, name=name, region=region, capacity_cpu=capacity_cpu, capacity_memory_mb=capacity_mem,
        sample_interval=sample_interval, data_dir=data_dir.resolve(), policy=restart_policy(max_restarts, restart_backoff),
    )  # fmt: skip

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows' event loops have no signal handlers: Ctrl+C still stops
                loop.add_signal_handler(sig, stopping.set)
        await node.start()
        await stopping.wait()
        await node.stop()

    asyncio.run(run())
