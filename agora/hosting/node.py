"""The hosting daemon (``agora host``, and the local node of ``agora serve``): a node registered with a hub that runs
the marketplace instances placed on it.

It is an SDK ``Agent``: instance operations reach it as tasks (``hosting.start``, ``.pause``, ``.resume``, ``.stop``),
so a node that is down simply finds its work queued when it comes back. It talks to the hub only through the SDK:
``agora.hosting.credentials`` for an instance's agent key, ``agora.hosting.report`` for what happened, and
``agora.hosting.assigned`` at start, to run again what was placed on it before a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil

from agora_sdk import Agent
from agora_sdk.client import AsyncAgoraClient
from agora_sdk.errors import AgoraError, Conflict, NotFound

from .builds import BuildError, Builds, isolated_env
from .processes import Instance, RestartPolicy, State

log = logging.getLogger("agora.hosting")

NODE_CAPABILITY = "agora.hosting.node"
SWEEP_SECONDS = 60.0  # how often working directories of instances that are gone are removed
MB = 1024 * 1024
# What a node tells the hub when an instance's process reaches a state (paused needs no word: the hub asked for it).
_REPORTED = {State.running: "running", State.stopped: "stopped", State.failed: "failed"}


def container_engine() -> str | None:
    """A container engine that answers (docker or podman), not just its CLI."""
    return next((tool for tool in ("docker", "podman") if shutil.which(tool) and _answers([tool, "info"])), None)


def detected_runtimes(engine: str | None = None) -> list[str]:
    """What this node can build and run: docker listings need a container engine."""
    runtimes = ["python", "custom"]
    if shutil.which("npm"):
        runtimes.append("npm")
    if engine or container_engine():
        runtimes.append("docker")
    return runtimes


def _answers(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class HostingNode:
    def __init__(
        self,
        url: str,
        key: str,
        *,
        name: str,
        data_dir: Path,
        region: str = "local",
        capacity_cpu: float | None = None,
        capacity_memory_mb: int | None = None,
        sample_interval: float = 30.0,
        stop_grace: float = 10.0,
        policy: RestartPolicy | None = None,
    ):
        self.url, self.key, self.name, self.region = url.rstrip("/"), key, name, region
        self.capacity_cpu = capacity_cpu or float(os.cpu_count() or 1)
        self.capacity_memory_mb = capacity_memory_mb or int(psutil.virtual_memory().total * 0.8 / MB)
        self.root = data_dir
        self.builds = Builds(data_dir / "builds")
        self.sample_interval = sample_interval
        self.stop_grace = stop_grace
        self.policy = policy or RestartPolicy()
        self.instances: dict[str, Instance] = {}
        self.engine: str | None = None  # docker or podman, if one answers
        self._containers: dict[str, str] = {}  # docker instances: their container's name
        self._locks: dict[str, asyncio.Lock] = {}
        self._loops: list[asyncio.Task[None]] = []
        self.agent: Agent | None = None

    @property
    def client(self) -> AsyncAgoraClient:
        assert self.agent is not None, "the node is not started"
        return self.agent.client

    async def start(self) -> None:
        """Register with the hub (retrying until it answers), take tasks, and run again what was placed here."""
        self.engine = await asyncio.to_thread(container_engine)
        async with AsyncAgoraClient(self.url, self.key) as admin:
            registered = await admin.hosting.register_node(
                self.name, region=self.region, capacity_cpu=self.capacity_cpu,
                capacity_memory_mb=self.capacity_memory_mb, runtimes=detected_runtimes(self.engine),
            )  # fmt: skip
        agent = Agent(
            f"node-{self.name}", url=self.url, api_key=registered.agent_token, concurrency=64,
            capabilities=[NODE_CAPABILITY], description=f"Agora hosting node {self.name} ({self.region})",
            metadata={"hosting_node": self.name}, heartbeat_interval=min(30.0, self.sample_interval),
        )  # fmt: skip
        agent.on_task("hosting.start")(self._on_start)
        agent.on_task("hosting.pause")(self._on_pause)
        agent.on_task("hosting.resume")(self._on_resume)
        agent.on_task("hosting.stop")(self._on_stop)
        self.agent = agent
        await agent.start()
        await self._recover()
        self._loops = [asyncio.create_task(self._sampling(), name="hosting-sampler")]
        log.info("hosting node %s is up", self.name, extra={"node": registered.node.node_id, "region": self.region})

    async def stop(self) -> None:
        """Stop taking work and stop every instance (the hub restarts them on this node's next start)."""
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self.agent is not None:
            await self.agent.stop()
        for inst in list(self.instances.values()):
            inst.on_change = None  # the hub may be going away too: nothing to report, they are run again on start
            await inst.terminate(self.stop_grace)
        log.info("hosting node %s stopped", self.name)

    # -- operations -------------------------------------------------------------------------------------------------

    async def _on_start(self, run: Any) -> dict[str, Any]:
        await self._launch(run.payload["instance_id"], run.payload)
        return {"instance_id": run.payload["instance_id"]}

    async def _on_pause(self, run: Any) -> dict[str, Any]:
        inst = self.instances.get(run.payload["instance_id"])
        if inst is not None and inst.state is State.running:
            await self._container("pause", inst.instance_id)
            await inst.pause()
        return {"instance_id": run.payload["instance_id"], "state": inst.state.value if inst else "unknown"}

    async def _on_resume(self, run: Any) -> dict[str, Any]:
        inst = self.instances.get(run.payload["instance_id"])
        if inst is not None and inst.state is State.paused:
            await inst.resume()
            await self._container("unpause", inst.instance_id)
        return {"instance_id": run.payload["instance_id"], "state": inst.state.value if inst else "unknown"}

    async def _on_stop(self, run: Any) -> dict[str, Any]:
        instance_id = run.payload["instance_id"]
        async with self._lock(instance_id):
            inst = self.instances.pop(instance_id, None)
            if inst is not None:
                grace = float(run.payload.get("grace_seconds", self.stop_grace))
                await self._container("stop", instance_id, "--time", str(int(grace)))
                await inst.terminate(grace)
            else:  # never started here (or already gone): the hub still waits to hear it is stopped
                await self._report(instance_id, status="stopped")
            shutil.rmtree(self._workdir(instance_id), ignore_errors=True)
        return {"instance_id": instance_id, "state": "stopped"}

    async def _container(self, action: str, instance_id: str, *options: str) -> None:
        """A docker instance's container is paused, resumed or stopped by its engine: signals reach only the CLI that
        started it (its start command names it ``--name $AGORA_CONTAINER_NAME``)."""
        name = self._containers.get(instance_id)
        if name is None or self.engine is None:
            return
        proc = await asyncio.create_subprocess_exec(
            self.engine, action, *options, name, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            log.warning("%s %s %s did not answer within 60 s", self.engine, action, name)

    def _lock(self, instance_id: str) -> asyncio.Lock:
        return self._locks.setdefault(instance_id, asyncio.Lock())

    def _workdir(self, instance_id: str) -> Path:
        return self.root / "instances" / instance_id

    async def _launch(self, instance_id: str, spec: dict[str, Any], paused: bool = False) -> None:
        """Build (once per listing version), fetch the instance's key and start its process. Idempotent: a start
        retried after a lost lease finds the instance running and leaves it be."""
        async with self._lock(instance_id):
            running = self.instances.get(instance_id)
            if running is not None and running.state not in (State.stopped, State.failed):
                return
            try:
                build = await self.builds.ensure(spec["listing_id"], spec["version"], spec["repository"], spec["build_config"])
            except BuildError as exc:
                await self._report(instance_id, status="failed", error=str(exc), output_tail=exc.output_tail)
                return
            try:
                creds = await self.client.hosting.credentials(instance_id)
            except (Conflict, NotFound) as exc:  # terminated (or gone) before it could start
                log.info("instance %s is not to be started: %s", instance_id, exc.message)
                return
            workdir = self._workdir(instance_id)
            _kill_leftover(workdir)
            await self.builds.prepare_workdir(build, workdir)
            env = self._environment(creds, workdir, instance_id)
            if spec["build_config"]["type"] == "docker":
                self._containers[instance_id] = env["AGORA_CONTAINER_NAME"] = f"agora-{instance_id}"
            inst = Instance(
                instance_id, workdir, spec["build_config"]["start_command"], env, policy=self.policy,
                memory_limit_mb=spec.get("memory_limit_mb"), on_change=self._changed,
            )  # fmt: skip
            self.instances[instance_id] = inst
            await inst.start()
            (workdir / ".agora-pid").write_text(str(inst.pid or ""))
            if paused and inst.state is State.running:
                await inst.pause()

    def _environment(self, creds: Any, workdir: Path, instance_id: str) -> dict[str, str]:
        return isolated_env(workdir, {
            **creds.env,
            "AGORA_URL": self.url, "AGORA_API_KEY": creds.agent_token, "AGORA_AGENT_ID": creds.agent_id,
            "AGORA_AGENT_NAME": creds.agent_name, "AGORA_INSTANCE_ID": instance_id,
        })  # fmt: skip

    async def _changed(self, inst: Instance) -> None:
        if inst.state is State.restarting:
            await self._report(inst.instance_id, restarting=True, error=inst.last_error, output_tail=inst.output_tail())
        elif inst.state in _REPORTED:
            failed = inst.state is State.failed
            await self._report(
                inst.instance_id, status=_REPORTED[inst.state], pid=inst.pid if inst.state is State.running else None,
                error=inst.last_error if failed else None, output_tail=inst.output_tail() if failed else None,
            )  # fmt: skip

    async def _report(self, instance_id: str, **fields: Any) -> None:
        report = {k: v for k, v in fields.items() if v is not None}
        try:
            await self.client.hosting.report(instance_id, **report)
        except AgoraError as exc:
            log.warning("report on %s refused: %s", instance_id, exc.message)

    # -- recovery and sampling --------------------------------------------------------------------------------------

    async def _recover(self) -> None:
        for placed in (await self.client.hosting.assigned()).instances:
            if placed.status == "stopping":
                await self._report(placed.instance_id, status="stopped")
            elif placed.instance_id not in self.instances:
                log.info("running instance %s again", placed.instance_id)
                asyncio.create_task(self._launch(placed.instance_id, placed.spec, paused=placed.status == "paused"))

    async def _sampling(self) -> None:
        swept = time.monotonic()
        while True:
            await asyncio.sleep(self.sample_interval)
            if time.monotonic() - swept >= SWEEP_SECONDS:
                swept = time.monotonic()
                with contextlib.suppress(AgoraError):
                    await self._sweep()
            for inst in list(self.instances.values()):
                usage = inst.sample() if inst.state is State.running else None
                if usage is not None:
                    await self._report(
                        inst.instance_id, cpu_percent=usage.cpu_percent, memory_mb=usage.memory_mb, processes=usage.processes
                    )


    async def _sweep(self) -> None:
        """Maintenance: the working directories (and records) of instances that no longer live here go."""
        live = {a.instance_id for a in (await self.client.hosting.assigned()).instances}
        for path in (self.root / "instances").glob("inst_*"):
            if path.name in live or self._lock(path.name).locked():
                continue
            inst = self.instances.pop(path.name, None)
            if inst is not None:
                await inst.terminate(0)  # failed, or stopped behind the node's back: nothing should run
            shutil.rmtree(path, ignore_errors=True)
            self._locks.pop(path.name, None)


def _kill_leftover(workdir: Path) -> None:
    """A process group left running by a node that died (its pid file names it, its cwd proves it) is killed."""
    pid_file = workdir / ".agora-pid"
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        pid = int(pid_file.read_text())
        if Path(psutil.Process(pid).cwd()) == workdir:
            os.killpg(pid, signal.SIGKILL)
