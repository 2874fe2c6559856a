"""``agora host``: run a hosting node for a hub (its options are shared with ``agora serve``'s local node)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from agora.core.egress import EgressPolicy
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

Sandbox = Annotated[
    str,
    typer.Option(
        envvar="AGORA_NODE_SANDBOX",
        help="How listing code (build commands, instances) is isolated: auto (a bubblewrap sandbox where bwrap works, "
        "else none), bwrap (required: the node does not start without it) or none (no sandbox). Either way it runs as "
        "a user of its own when the node runs as root, and the node's and the hub's directories are closed to it.",
    ),
]
BuildTimeout = Annotated[
    float,
    typer.Option(envvar="AGORA_NODE_BUILD_TIMEOUT", min=1, help="Seconds a listing's build (fetching it and its build command) may take."),
]
BuildMaxBytes = Annotated[
    int,
    typer.Option(
        envvar="AGORA_NODE_BUILD_MAX_BYTES",
        min=1024 * 1024,
        help="Bytes on disk a listing's build may take (its source and what the build command writes).",
    ),
]
ShutdownTimeout = Annotated[
    float,
    typer.Option(
        envvar="AGORA_SHUTDOWN_TIMEOUT",
        min=1,
        help="Seconds shutdown (SIGTERM, SIGINT) may take: then whatever still runs (instances, builds) is killed and "
        "the process exits with code 1.",
    ),
]
SANDBOX_MODES = ("auto", "bwrap", "none")


def sandbox_mode(value: str, flag: str) -> str:
    if value not in SANDBOX_MODES:
        raise typer.BadParameter(f"must be one of {', '.join(SANDBOX_MODES)}", param_hint=flag)
    return value


def stop_grace(shutdown_timeout: float) -> float:
    """Seconds a stopping node gives its instances between SIGTERM and SIGKILL: room within the shutdown timeout."""
    return min(10.0, shutdown_timeout / 3)
EgressAllow = Annotated[
    list[str] | None,
    typer.Option(
        envvar="AGORA_EGRESS_ALLOW",
        metavar="NETWORK|HOST",
        help="Networks (CIDR), addresses or host names (*.example.com for every name under it) that every caller may "
        "reach although they are not public, e.g. an internal network (repeat, or separate with commas; in the variable "
        "also with spaces). The hub's MCP upstreams, A2A agents, webhooks and the hosting nodes' listing repositories "
        "are otherwise refused loopback, private, link-local (cloud metadata), CGNAT, multicast and reserved addresses.",
    ),
]
EgressDeny = Annotated[
    list[str] | None,
    typer.Option(
        envvar="AGORA_EGRESS_DENY",
        metavar="NETWORK|HOST",
        help="Networks (CIDR), addresses or host names nobody may reach, the admin included; it wins over "
        "--egress-allow (repeat, or separate with commas).",
    ),
]


def egress_policy(allow: list[str] | None, deny: list[str] | None, admin_exempt: bool = True) -> EgressPolicy:
    """The egress policy of these flags, or the flag that is wrong."""
    from agora.core.egress import EgressPolicy

    for values, flag in ((allow, "--egress-allow"), (deny, "--egress-deny")):
        try:
            EgressPolicy.parse(values or ())
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=flag) from None
    return EgressPolicy.parse(allow or (), deny or (), admin_exempt)


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
    sandbox: Sandbox = "auto",
    build_timeout: BuildTimeout = 600.0,
    build_max_bytes: BuildMaxBytes = 1 << 30,
    shutdown_timeout: ShutdownTimeout = 30.0,
    egress_allow: EgressAllow = None,
    egress_deny: EgressDeny = None,
) -> None:
    """Run a hosting node: it registers with the hub, builds and runs the marketplace instances placed on it, and
    reports their state and resource use. SIGINT/SIGTERM stop it and its instances (they run again when it is back)."""
    from agora.hosting.node import HostingNode
    from agora.hosting.sandbox import SandboxError, SandboxMode
    from agora.observability.logging import configure
    from agora.shutdown import ShutdownDeadline

    if not key:
        raise typer.BadParameter("give the hub's admin key (or set AGORA_API_KEY)", param_hint="--key")
    egress = egress_policy(egress_allow, egress_deny)
    configure(log_level, log_format)
    node = HostingNode(
        hub, key, name=name, region=region, capacity_cpu=capacity_cpu, capacity_memory_mb=capacity_mem,
        sample_interval=sample_interval, data_dir=data_dir.resolve(), policy=restart_policy(max_restarts, restart_backoff),
        sandbox=SandboxMode(sandbox_mode(sandbox, "--sandbox")), build_timeout=build_timeout,
        build_max_bytes=build_max_bytes, stop_grace=stop_grace(shutdown_timeout),
        egress=egress,
    )  # fmt: skip
    deadline = ShutdownDeadline(shutdown_timeout)

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()

        def begin_shutdown(*_: object) -> None:  # a plain signal handler: it arms the deadline even if the loop is stuck
            deadline.arm()
            loop.call_soon_threadsafe(stopping.set)

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, begin_shutdown)
        starting = asyncio.ensure_future(node.start())
        await asyncio.wait([starting, asyncio.ensure_future(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
        try:
            if starting.done():
                starting.result()  # a node that could not start says why
                await stopping.wait()
            else:  # stopped while starting (the hub may not answer yet)
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
        finally:
            await node.stop()

    try:
        asyncio.run(run())
    except SandboxError as exc:
        typer.echo(f"agora host: the node cannot run listing code here: {exc}", err=True)
        raise typer.Exit(2) from None
