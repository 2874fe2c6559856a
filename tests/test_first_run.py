"""A hosting node checks at start that listing code can run the node's Python (issue 62's first-run path): as root
without bubblewrap, with Agora installed in a private home, every instance used to fail with ``python: Permission
denied`` and nothing said why. Now such a node refuses to start, naming the cause and the two fixes; with bubblewrap,
or with Agora where other users can read it, or as a normal user, marketplace instances of a Python listing run."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ok, until
from .hubproc import HubProcess
from .interpreters import python_in, readable_python
from .test_marketplace import NODE_ENV, _online, listing, market_hub, running

hub_with_node = contextlib.contextmanager(market_hub)

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="listing code runs as users of its own only when the node is root")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory of its own under /tmp that other users may pass (pytest's own, /tmp/pytest-of-root, is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="agora-first-run-", dir="/tmp"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private_python(open_dir: Path) -> str:
    """Agora installed in a private home: a virtualenv inside a directory only its owner may enter."""
    home = open_dir / "home"
    home.mkdir(mode=0o700)
    return python_in(home / "venv")


def _without_bwrap(directory: Path) -> str:
    """A PATH with every program of the machine but bubblewrap: a machine where it is not installed."""
    directory.mkdir()
    for entry in Path("/usr/bin").iterdir():
        if entry.name != "bwrap":
            (directory / entry.name).symlink_to(entry)
    return f"{directory}:/usr/sbin:/sbin"


def _check_message(text: str, home: Path) -> None:
    assert f"{home} (mode 700) does not let other users pass" in text, text
    assert "install bubblewrap" in text and "where other users may read it" in text, text


@needs_root
def test_root_without_bubblewrap_and_a_private_install_refuses_to_start_the_node_and_says_why(
    private_python: str, open_dir: Path
) -> None:
    home = Path(private_python).parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    for mode in ("auto", "none"):
        done = subprocess.run(
            [private_python, "-m", "agora", "host", "--hub", "http://127.0.0.1:9", "--key", "unused", "--sandbox", mode,
             "--data-dir", str(open_dir / f"node-{mode}")],
            env={**env, "PATH": _without_bwrap(open_dir / f"bin-{mode}")}, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert "agora host: the node cannot run listing code here: listing code runs as uid" in done.stderr
        _check_message(done.stderr, home)

    # `agora serve` (the first run) serves on without its node, says why in its log, and placing an instance says
    # that no node is there: nothing fails later with "Permission denied".
    hub = HubProcess(open_dir / "hub", env={**NODE_ENV, "AGORA_NODE_SANDBOX": "none"}, python=private_python).start()
    try:
        until(lambda: "local hosting node not started" in hub.log_path.read_text(), "the hub never said why its node did not start")
        _check_message(hub.log_path.read_text(), home)
        with hub.client() as admin:
            published = ok(admin.post("/marketplace/agents", json=listing()))
            refused = admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]})
            assert refused.status_code == 409 and "no hosting node is registered" in refused.json()["error"]["message"]
            assert ok(admin.get("/marketplace/instances"))["instances"] == []
    finally:
        hub.stop()


def _runs_python(hub: HubProcess) -> dict:
    """Publish the example Python listing (its build imports the SDK, its start command is ``python agent.py``) and
    return its instance once its agent has registered with the hub."""
    with hub.client() as admin:
        published = ok(admin.post("/marketplace/agents", json=listing()))
        made = ok(admin.post("/marketplace/instances", json={"agent_id": published["listing_id"]}))
        return running(admin, made["instance_id"], timeout=60)


@needs_root
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_root_with_bubblewrap_runs_python_instances_from_a_private_install(private_python: str, open_dir: Path) -> None:
    with hub_with_node(open_dir / "hub", python=private_python, AGORA_NODE_SANDBOX="bwrap") as hub:
        isolation = _runs_python(hub)["isolation"]
    assert isolation["sandbox"] == "bwrap" and isolation["uid"] not in (None, 0)


@needs_root
def test_root_without_bubblewrap_runs_python_instances_from_a_readable_install(open_dir: Path) -> None:
    python = readable_python(open_dir / "opt-agora")
    with hub_with_node(open_dir / "hub", python=python, AGORA_NODE_SANDBOX="none") as hub:
        isolation = _runs_python(hub)["isolation"]
    assert isolation["sandbox"] == "none" and isolation["uid"] not in (None, 0)


@needs_root  # root makes the normal user the hub runs as
def test_a_normal_user_runs_python_instances_as_itself(open_dir: Path) -> None:
    python = readable_python(open_dir / "opt-agora")
    uid = 50_000 + os.getpid() % 10_000
    data = open_dir / "hub"
    data.mkdir()
    os.chown(data, uid, uid)
    hub = HubProcess(
        data, env={**NODE_ENV, "HOME": str(data)}, python=python,
        run_as=["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"],
    ).start()  # fmt: skip
    try:
        with hub.client() as admin:
            until(lambda: _online(admin), "the normal user's hosting node never came online")
        instance = _runs_python(hub)
        assert instance["isolation"]["uid"] is None  # its node's own user: no other one to switch to
        assert os.stat(f"/proc/{instance['pid']}").st_uid == uid
    finally:
        hub.stop()
