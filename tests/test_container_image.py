"""The container image (``Dockerfile``), built and run with podman: non-root, the data directory a volume, settings
from AGORA_* variables, the healthcheck on /ready, SIGTERM draining parked work, and the migrate-then-serve split
the Kubernetes manifests use, on PostgreSQL.

No image registry is reachable from the test machines, so the ``debian:bookworm-slim`` the Dockerfile starts from is
built here from Debian's packages (mmdebstrap, slimmed as the official image is) and passed as ``DEBIAN_IMAGE``.
Skipped where podman cannot run a container, unless AGORA_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import resource
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import REQUIRE_SERVICES, call, fresh_postgres_url, ok
from .hubproc import free_port

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "localhost/agora-ci/debian:bookworm-slim"
IMAGE = "localhost/agora:test"
# What the official slim image sets: no package caches, no documentation (path-include keeps the licences).
DOCKER_CLEAN = (
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
    'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";\n'
)
SLIM_PATHS = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*", "/usr/share/lintian/*"]
# The CA bundle pip trusts on this machine (registries are reached through a TLS-inspecting proxy here).
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def podman_args() -> list[str]:
    """podman as it runs on these machines: runc (crun refuses their hybrid cgroup hierarchy), and rlimits no higher
    than this process has (the container runtime may not raise them)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return ["podman", "--runtime", "runc"], ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=8192:8192"]


def podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*podman_args()[0], *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:2])} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    return out


def _runtime_missing() -> str | None:
    for tool in ("podman", "runc", "mmdebstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc mmdebstrap)"
    probe = subprocess.run([*podman_args()[0], "info"], capture_output=True, text=True, timeout=60)
    return None if probe.returncode == 0 else f"podman cannot run here: {probe.stderr.strip()[-300:]}"


def _build_base(tmp: Path) -> None:
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    clean = tmp / "docker-clean"
    clean.write_text(DOCKER_CLEAN)
    hooks = [f"upload {clean} /etc/apt/apt.conf.d/docker-clean", 'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin']
    args = ["mmdebstrap", "--variant=minbase", "--mode=root", "--quiet"]
    args += [f"--dpkgopt=path-exclude={p}" for p in SLIM_PATHS] + ["--dpkgopt=path-include=/usr/share/doc/*/copyright"]
    args += [f"--customize-hook={h}" for h in hooks] + ["bookworm", "-", "http://deb.debian.org/debian"]
    rootfs = subprocess.run(args, capture_output=True, timeout=600)
    assert rootfs.returncode == 0, rootfs.stderr.decode()[-3000:]
    imported = subprocess.run([*podman_args()[0], "import", "-", BASE_IMAGE], input=rootfs.stdout, capture_output=True, timeout=120)
    assert imported.returncode == 0, imported.stderr.decode()[-2000:]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    reason = _runtime_missing()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    build = ["build", "--format", "docker", *podman_args()[1], "--build-arg", f"DEBIAN_IMAGE={BASE_IMAGE}", "-t", IMAGE]
    if HOST_CA.exists():
        build += ["--build-arg", "PIP_CERT=/run/agora-build-ca.crt", "-v", f"{HOST_CA}:/run/agora-build-ca.crt:ro"]
    with open(tmp_path_factory.getbasetemp().parent / "agora-image.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time across test workers; the second reuses its layers
        _build_base(tmp_path_factory.mktemp("base"))
        podman(*build, str(ROOT), timeout=900)
    return IMAGE


@contextlib.contextmanager
def container(image: str, *args: str, env: dict[str, str], volume: str | None = None) -> Iterator[str]:
    """A detached container on the host's network (the hub listens on 127.0.0.1 only), removed afterwards."""
    name = f"agora-test-{uuid.uuid4().hex[:8]}"
    flags = [f"--env={k}={v}" for k, v in env.items()] + (["-v", f"{volume}:/var/lib/agora"] if volume else [])
    podman("run", "-d", "--name", name, "--network", "host", *podman_args()[1], *flags, image, *args)
    try:
        yield name
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)


def wait_ready(url: str, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout}s:\n{podman('logs', name, check=False).stderr[-3000:]}")


def process_tree(pid: int) -> list[tuple[str, tuple[str, ...]]]:
    """(command line, uids) of a host process and all its descendants, read from /proc on the host."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        proc = Path(f"/proc/{current}")
        uids = next(line.split()[1:] for line in (proc / "status").read_text().splitlines() if line.startswith("Uid:"))
        found.append(((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(), tuple(uids)))
        todo += children.get(current, [])
    return found


def test_image_config_runs_as_a_user_with_a_data_volume_and_a_ready_healthcheck(image):
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == "10001:10001"
    assert "/var/lib/agora" in config["Volumes"]
    assert config["Entrypoint"] == ["tini", "--", "agora"] and config["Cmd"] == ["serve"]
    assert "/ready" in " ".join(inspected["Healthcheck"]["Test"])
    print(f"image size: {inspected['Size'] / 1e6:.0f} MB")  # reported in the closing note


def test_container_serves_as_non_root_from_its_volume_and_drains_on_sigterm(image):
    port = free_port()
    volume = f"agora-test-{uuid.uuid4().hex[:8]}"
    env = {"AGORA_PORT": str(port), "AGORA_HOST": "127.0.0.1", "AGORA_GRACEFUL_TIMEOUT": "4"}
    url = f"http://127.0.0.1:{port}"
    try:
        with container(image, env=env, volume=volume) as name:
            wait_ready(url, name)
            health = podman("healthcheck", "run", name, check=False)
            assert health.returncode == 0, health.stdout + health.stderr
            processes = process_tree(json.loads(podman("inspect", name).stdout)[0]["State"]["Pid"])
            assert any("agora serve" in cmd for cmd, _ in processes), processes
            assert {uids for _, uids in processes} == {("10001", "10001", "10001", "10001")}, processes  # real … fs
            key_mode = podman("exec", name, "stat", "-c", "%a %u", "/var/lib/agora/admin.key").stdout.split()
            assert key_mode == ["600", "10001"]
            key = podman("exec", name, "cat", "/var/lib/agora/admin.key").stdout.strip()
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
                agent = ok(call(admin, "agora.agents.register", agent_name="in-a-container", capabilities=["rare"]))
            answers: dict[str, httpx.Response] = {}

            def park() -> None:
                with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {agent['agent_token']}"}) as c:
                    answers["receive"] = c.post("/agora/messaging/receive", json={"wait": 30}, timeout=60)

            parked = threading.Thread(target=park)
            parked.start()
            time.sleep(0.5)
            started = time.monotonic()
            podman("stop", "-t", "20", name, timeout=60)  # STOPSIGNAL: SIGTERM, through tini
            parked.join(20)
            stopped_in = time.monotonic() - started
            assert answers["receive"].status_code == 200 and answers["receive"].json()["messages"] == []
            assert stopped_in < 6, f"took {stopped_in:.1f}s to stop"
            state = json.loads(podman("inspect", name).stdout)[0]["State"]
            # uvicorn ends a clean shutdown by re-raising the signal it caught (128 + 15); tini passes that on.
            assert state["ExitCode"] in (0, 143), podman("logs", name, check=False).stderr[-2000:]
            assert "Application shutdown complete" in podman("logs", name).stderr
        with container(image, env=env, volume=volume) as again:  # the same volume: the same agent, the same key
            wait_ready(url, again)
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
                assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["agent_name"] == "in-a-container"
    finally:
        podman("volume", "rm", "-f", volume, check=False)


def test_migration_job_then_hubs_that_do_not_migrate_on_postgres(image, postgres_url):
    """The Kubernetes flow: a job runs `agora db upgrade`, the hubs wait for the schema and start with --no-migrate."""
    database = fresh_postgres_url(postgres_url)
    key = "agora_test_" + uuid.uuid4().hex
    port = free_port()
    env = {"AGORA_DATABASE_URL": database, "AGORA_ADMIN_KEY": key, "AGORA_PORT": str(port), "AGORA_HOST": "127.0.0.1"}
    refused = podman("run", "--rm", "--network", "host", *podman_args()[1], *[f"--env={k}={v}" for k, v in env.items()],
                     image, "serve", "--no-migrate", check=False)
    assert refused.returncode == 1 and "run `agora db upgrade` first" in refused.stderr
    job = podman("run", "--rm", "--network", "host", *podman_args()[1], f"--env=AGORA_DATABASE_URL={database}", image, "db", "upgrade")
    assert "database is at revision" in job.stdout
    waited = podman("run", "--rm", "--network", "host", *podman_args()[1], f"--env=AGORA_DATABASE_URL={database}", image,
                    "db", "status", "--wait", "30")
    assert "state     current" in waited.stdout
    with container(image, "serve", "--no-migrate", env=env) as name:
        wait_ready(f"http://127.0.0.1:{port}", name)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as admin:
            ok(call(admin, "agora.agents.register", agent_name="on-postgres"))
