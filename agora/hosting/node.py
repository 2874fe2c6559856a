"""The hosting daemon (``agora host``, and the local node of ``agora serve``): a node registered with a hub that runs
the marketplace instances placed on it.

It is an SDK ``Agent``: instance operations reach it as tasks (``hosting.start``, ``.pause``, ``.resume``, ``.stop``),
so a node that is down simply finds its work queued when it comes back. It talks to the hub only through the SDK:
``agora.hosting.credentials`` for an instance's agent key, ``agora.hosting.report`` for what happened, and
``agora.hosting.assigned`` at start, to run again what was placed on it before a restart.

State changes go to the hub in order from an outbox, so that an instance's supervisor never waits on the network. A
node that loses the hub (a network cut, a hub restart) keeps its instances running and restarting; their changes wait
in the outbox. Once the hub answers again the node reconciles: what was placed here or ended meanwhile is started or
swept, the waiting changes are told, then each instance's state now (the hub stopped billing the instances it could
not see, from the node's last sign of life; a running report bills them again).
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
from collections import deque
from pathlib import Path
from typing import Any

import psutil

from agora.core.egress import EgressPolicy
from agora_sdk import Agent
from agora_sdk.client import AsyncAgoraClient
from agora_sdk.errors import AgoraError, Conflict, NotFound, Unavailable

from .builds import DEFAULT_MAX_BYTES, BuildError, Builds, isolated_env
from .files import in_thread
from .processes import Instance, RestartPolicy, State
from .sandbox import Confinement, Limits, Sandbox, SandboxMode, kill_processes_of

log = logging.getLogger("agora.hosting")

NODE_CAPABILITY = "agora.hosting.node"
SWEEP_SECONDS = 60.0  # how often working directories of instances that are gone are removed
MB = 1024 * 1024
UNSENT_REPORTS = 1000  # state changes kept while the hub is away (the oldest go first: the state now is told anyway)
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


def engine_socket(engine: str | None) -> Path | None:
    """The unix socket of the container engine's daemon, where its CLI finds it by default."""
    candidates = {"docker": ["/var/run/docker.sock", "/run/docker.sock"], "podman": ["/run/podman/podman.sock"]}.get(engine or "", [])
    host = os.environ.get("DOCKER_HOST", "")
    if engine == "docker" and host.startswith("unix://"):
        candidates.insert(0, host.removeprefix("unix://"))
    return next((Path(c) for c in candidates if Path(c).is_socket()), None)


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
        sandbox: SandboxMode = SandboxMode.auto,
        build_timeout: float = 600.0,
        build_max_bytes: int = DEFAULT_MAX_BYTES,
        hub_data_dir: Path | None = None,
        egress: EgressPolicy | None = None,
    ):
        self.url, self.key, self.name, self.region = url.rstrip("/"), key, name, region
        self.capacity_cpu = capacity_cpu or float(os.cpu_count() or 1)
        self.capacity_memory_mb = capacity_memory_mb or int(psutil.virtual_memory().total * 0.8 / MB)
        self.root = data_dir
        self.sandbox_mode = sandbox
        self.egress = (egress or EgressPolicy()).acting_for(admin=False)
        # Kept from listing code: neither copied into a build nor visible to it (the hub's, when in its process).
        self.protected = {data_dir: "the hosting node's directory"}
        if hub_data_dir is not None:
            self.protected[hub_data_dir] = "the hub's data directory"
        self.sandbox = Sandbox()  # replaced at start by what the machine offers
        self.build_timeout, self.build_max_bytes = build_timeout, build_max_bytes
        self.builds = self._builds()
        self.sample_interval = sample_interval
        self.stop_grace = stop_grace
        self.policy = policy or RestartPolicy()
        self.instances: dict[str, Instance] = {}
        self.engine: str | None = None  # docker or podman, if one answers
        self._containers: dict[str, str] = {}  # docker instances: their container's name
        self._confinements: dict[str, Confinement] = {}
        self._launches: dict[str, asyncio.Task[None]] = {}  # builds and starts under way, cancelled by a stop
        self._locks: dict[str, asyncio.Lock] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._outbox: deque[tuple[str, dict[str, Any]]] = deque(maxlen=UNSENT_REPORTS)  # state changes, in order
        self._outbox_filled = asyncio.Event()
        self.out_of_touch = False  # a report did not reach the hub: it is told everything when it answers again
        self.agent: Agent | None = None

    def _builds(self) -> Builds:
        return Builds(
            self.root / "builds", timeout=self.build_timeout, max_bytes=self.build_max_bytes, sandbox=self.sandbox,
            protected=self.protected, egress=self.egress,
        )  # fmt: skip

    @property
    def client(self) -> AsyncAgoraClient:
        assert self.agent is not None, "the node is not started"
        return self.agent.client

    async def start(self) -> None:
        """Set up the sandbox, register with the hub (retrying until it answers), take tasks, and run again what was
        placed here. Raises ``SandboxError`` when listing code cannot be run the way ``sandbox`` asks."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.sandbox = await asyncio.to_thread(Sandbox.setup, self.sandbox_mode, self.root, list(self.protected))
        self.builds = self._builds()
        log.info("hosting node %s runs listing code with %s", self.name, self.sandbox.describe())
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
            shutdown_grace=self.stop_grace,
        )  # fmt: skip
        agent.on_task("hosting.start")(self._on_start)
        agent.on_task("hosting.pause")(self._on_pause)
        agent.on_task("hosting.resume")(self._on_resume)
        agent.on_task("hosting.stop")(self._on_stop)
        self.agent = agent
        await agent.start()
        self._loops = [asyncio.create_task(self._sending(), name="hosting-reports")]
        await self._recover()
        self._loops.append(asyncio.create_task(self._sampling(), name="hosting-sampler"))
        log.info("hosting node %s is up", self.name, extra={"node": registered.node.node_id, "region": self.region})

    async def stop(self) -> None:
        """Stop taking work, cancel builds under way and stop every instance (the hub restarts them on this node's next
        start): SIGTERM, SIGKILL after ``stop_grace``, all at once."""
        for task in [*self._loops, *self._launches.values()]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._launches.values(), return_exceptions=True)
        if self.agent is not None:
            await self.agent.stop()
        running = list(self.instances.values())
        for inst in running:
            inst.on_change = None  # the hub may be going away too: nothing to report, they are run again on start
        terminations = {asyncio.ensure_future(inst.terminate(self.stop_grace)): inst for inst in running}
        if terminations:
            _, late = await asyncio.wait(terminations, timeout=self.stop_grace + 1.0)
            for termination in late:  # begun earlier with a longer grace (a customer's terminate): it ends now
                terminations[termination].kill()
            if late:
                await asyncio.wait(late, timeout=2.0)
        for instance_id in list(self._confinements):
            await self._release(instance_id)
        if self.sandbox.cgroups is not None:
            self.sandbox.cgroups.remove()
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
        launch = self._launches.get(instance_id)
        if launch is not None:  # still building or starting: that stops now
            launch.cancel()
            await asyncio.gather(launch, return_exceptions=True)
        async with self._lock(instance_id):
            inst = self.instances.get(instance_id)
            if inst is not None:  # it stays listed while it stops, so that a node stopping meanwhile waits for it
                grace = float(run.payload.get("grace_seconds", self.stop_grace))
                await self._container("stop", instance_id, "--time", str(int(grace)))
                await inst.terminate(grace)
                self.instances.pop(instance_id, None)
            else:  # never started here (or already gone): the hub still waits to hear it is stopped
                await self._report(instance_id, status="stopped")
            await self._release(instance_id)
            await in_thread(lambda _stop: shutil.rmtree(self._workdir(instance_id), ignore_errors=True))
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

    def _pid_file(self, instance_id: str) -> Path:
        """Where the node notes an instance's process group: outside the instance's directory, which is its own."""
        return self.root / "pids" / instance_id

    async def _launch(self, instance_id: str, spec: dict[str, Any], paused: bool = False) -> None:
        """Build (once per listing version), fetch the instance's key and start its process. Idempotent: a start
        retried after a lost lease finds the instance running and leaves it be. A stop meanwhile cancels it."""
        if instance_id in self._launches:
            return
        launch = asyncio.create_task(self._start_instance(instance_id, spec, paused), name=f"launch {instance_id}")
        self._launches[instance_id] = launch
        try:
            await launch
        except asyncio.CancelledError:
            me = asyncio.current_task()
            if me is not None and me.cancelling():
                raise
            log.info("start of instance %s was cancelled", instance_id)  # by a stop: not this task's own cancellation
        finally:
            self._launches.pop(instance_id, None)

    async def _start_instance(self, instance_id: str, spec: dict[str, Any], paused: bool) -> None:
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
            _kill_leftover(self._pid_file(instance_id), workdir)
            await self._release(instance_id)
            uid = self._instance_uid(instance_id, workdir)
            try:
                await self.builds.prepare_workdir(build, workdir, uid)
            except BuildError as exc:  # no room for its working directory
                await self._report(instance_id, status="failed", error=str(exc), output_tail=exc.output_tail)
                return
            env = self._environment(creds, workdir, instance_id)
            if spec["build_config"]["type"] == "docker":
                self._containers[instance_id] = env["AGORA_CONTAINER_NAME"] = f"agora-{instance_id}"
                if self.engine == "docker" and (socket := engine_socket(self.engine)) is not None:
                    env["DOCKER_HOST"] = f"unix://{socket}"
            confinement = await self._confine(instance_id, workdir, uid, spec)
            inst = Instance(
                instance_id, workdir, spec["build_config"]["start_command"], env, policy=self.policy,
                memory_limit_mb=spec.get("memory_limit_mb"), confinement=confinement, on_change=self._changed,
            )  # fmt: skip
            self.instances[instance_id] = inst
            await inst.start()
            pid_file = self._pid_file(instance_id)
            pid_file.parent.mkdir(mode=0o700, exist_ok=True)
            pid_file.write_text(str(inst.pid or ""))
            if paused and inst.state is State.running:
                await inst.pause()

    def _instance_uid(self, instance_id: str, workdir: Path) -> int | None:
        """The user an instance runs as (the node runs as root): the one that owns its directory, else a new one."""
        uids = self.sandbox.uids
        if uids is None:
            return None
        try:
            owner = workdir.stat().st_uid
        except OSError:  # a new instance
            return uids.take(f"instance:{instance_id}")
        if uids.owns(owner):
            return uids.take(f"instance:{instance_id}", owner)
        uid = uids.take(f"instance:{instance_id}")
        self.sandbox.own(workdir, uid)  # made before its node switched users: handed over with its state
        return uid

    async def _confine(self, instance_id: str, workdir: Path, uid: int | None, spec: dict[str, Any]) -> Confinement:
        limits = Limits(memory_mb=spec.get("memory_limit_mb"), cpu=spec.get("cpu_limit"))
        # A docker listing's start command drives the engine: it gets the engine's socket (the container is its sandbox).
        share = [s for s in [engine_socket(self.engine)] if s is not None] if spec["build_config"]["type"] == "docker" else []
        try:
            confinement = await asyncio.to_thread(self.sandbox.confine, workdir, uid, limits, instance_id, share)
        except OSError as exc:  # its cgroup could not be made: the limits fall back to rlimits and samples
            log.warning("instance %s: no cgroup (%s)", instance_id, exc)
            confinement = self.sandbox.confine(workdir, uid, limits, share=share)
        self._confinements[instance_id] = confinement
        log.info("instance %s is confined: %s", instance_id, confinement.isolation)
        return confinement

    async def _release(self, instance_id: str) -> None:
        """What confined an instance goes with it: its cgroup and its user."""
        confinement = self._confinements.pop(instance_id, None)
        if confinement is not None:
            await asyncio.to_thread(confinement.release)
            if confinement.isolation["uid"] is not None:  # a process that left the group (and had no cgroup) goes too
                await asyncio.to_thread(kill_processes_of, confinement.isolation["uid"])
        if self.sandbox.uids is not None and not self._workdir(instance_id).exists():
            self.sandbox.uids.release(f"instance:{instance_id}")

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
            failed, running = inst.state is State.failed, inst.state is State.running
            if failed:
                await self._release(inst.instance_id)
            confinement = self._confinements.get(inst.instance_id)
            await self._report(
                inst.instance_id, status=_REPORTED[inst.state], pid=inst.pid if running else None,
                error=inst.last_error if failed else None, output_tail=inst.output_tail() if failed else None,
                isolation=confinement.isolation if running and confinement is not None else None,
            )  # fmt: skip

    async def _report(self, instance_id: str, **fields: Any) -> None:
        """A state change goes to the outbox; a sample is sent now (lost if the hub is away: the next one is taken)."""
        report = {k: v for k, v in fields.items() if v is not None}
        if "status" in report or report.get("restarting"):
            self._outbox.append((instance_id, report))
            self._outbox_filled.set()
            return
        try:
            await self.client.hosting.report(instance_id, **report)
        except Unavailable as exc:
            self._lost(exc)
        except AgoraError as exc:
            log.warning("report on %s refused: %s", instance_id, exc.message)

    async def _sending(self) -> None:
        """The outbox goes to the hub one change at a time, in order; while the hub is away the changes wait."""
        while True:
            await self._outbox_filled.wait()
            self._outbox_filled.clear()
            while self._outbox and not self.out_of_touch:
                instance_id, report = self._outbox[0]
                try:
                    await self.client.hosting.report(instance_id, **report)
                except Unavailable as exc:
                    self._lost(exc)
                    break
                except AgoraError as exc:  # e.g. an instance terminated meanwhile: its stop is on its way here
                    log.warning("report on %s refused: %s", instance_id, exc.message)
                self._outbox.popleft()

    def _lost(self, exc: Unavailable) -> None:
        if not self.out_of_touch:
            log.warning("hosting node %s lost the hub (%s): its instances keep running", self.name, exc.message)
        self.out_of_touch = True

    # -- recovery and sampling --------------------------------------------------------------------------------------

    async def _recover(self) -> None:
        for placed in (await self.client.hosting.assigned()).instances:
            if placed.instance_id in self.instances:
                continue  # running here (one stopping has its stop task on its way)
            if placed.status == "stopping":
                await self._report(placed.instance_id, status="stopped")
            else:
                log.info("running instance %s again", placed.instance_id)
                asyncio.create_task(self._launch(placed.instance_id, placed.spec, paused=placed.status == "paused"))

    async def _reconcile(self) -> None:
        """The hub answers again: run what was placed here meanwhile and sweep what ended, then send the outbox and
        every instance's state now. Raises ``Unavailable`` (and stays out of touch) if the hub is still away."""
        await self._recover()
        await self._sweep()
        self.out_of_touch = False
        for inst in list(self.instances.values()):
            if inst.state is State.running:
                await self._changed(inst)
        self._outbox_filled.set()
        log.info("hosting node %s is back in touch with the hub: %d instances reconciled", self.name, len(self.instances))

    async def _sampling(self) -> None:
        swept = time.monotonic()
        while True:
            await asyncio.sleep(self.sample_interval)
            if self.out_of_touch:
                with contextlib.suppress(Unavailable):
                    await self._reconcile()
                continue
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
        if self.sandbox.cgroups is not None:
            await asyncio.to_thread(self.sandbox.cgroups.prune, live | set(self._confinements))
        for path in (self.root / "instances").glob("inst_*"):
            if path.name in live or self._lock(path.name).locked():
                continue
            inst = self.instances.pop(path.name, None)
            if inst is not None:
                await inst.terminate(0)  # failed, or stopped behind the node's back: nothing should run
            await in_thread(lambda _stop: shutil.rmtree(path, ignore_errors=True))
            self._pid_file(path.name).unlink(missing_ok=True)
            await self._release(path.name)
            self._locks.pop(path.name, None)


def _kill_leftover(pid_file: Path, workdir: Path) -> None:
    """A process group left running by a node that died (its pid file names it, its cwd proves it) is killed."""
    with contextlib.suppress(OSError, ValueError, psutil.Error):
        pid = int(pid_file.read_text())
        if Path(psutil.Process(pid).cwd()) == workdir:
            os.killpg(pid, signal.SIGKILL)
