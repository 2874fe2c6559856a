"""The egress guard (issue 24, items 4, 7b and 8b): a customer or an agent cannot make the hub, or a hosting node,
connect to loopback, private or link-local addresses (however the address is spelled), closed and open ports answer
alike, a refused MCP registration leaves no trace, malformed URLs are 400s naming their field, and the operator's
allowlist and the admin's exemption still let local servers be reached."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError

from agora.core.egress import EgressPolicy
from agora.hosting.builds import BuildError, Builds

from ..conftest import call, expect_error, new_tenant, ok, unique
from ..hubproc import FixtureServer, HubProcess, free_port
from ..test_a2a import a2a_client, message

TESTS = Path(__file__).resolve().parents[1]
TOKEN = "egress-secret"
INTERNAL_HOSTS = ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "[::1]"]  # all mean this machine
PRIVATE = ["http://10.0.0.1/", "http://169.254.169.254/", "http://[fd00::1]/", "http://100.64.0.1/"]
MALFORMED = ["http://xn--.example/", "http://ab\u00e9.xn--/", "http://\u00e9" + "a" * 70 + ".com/", "http://0177.0.0.1/",
             "http://" + "a" * 64 + ".example/", "http://a.xn--bad.example/"]  # fmt: skip


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub with the default policy: customers and agents reach public addresses only."""
    hub = HubProcess(tmp_path_factory.mktemp("egress-default")).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def allowing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub whose operator lets everybody reach 127.0.0.1 (and nothing else that is not public)."""
    hub = HubProcess(tmp_path_factory.mktemp("egress-allow"), env={"AGORA_EGRESS_ALLOW": "127.0.0.1/32"}).start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[FixtureServer]:
    server = FixtureServer(str(TESTS / "mcp_upstream.py"), ["--http", "{port}", "--token", TOKEN], probe="/mcp").start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def a2a_server() -> Iterator[FixtureServer]:
    server = FixtureServer(str(TESTS / "a2a_remote.py"), ["--port", "{port}", "--token", TOKEN], probe="/.well-known/agent-card.json").start()
    yield server
    server.kill()


@contextlib.contextmanager
def tcp_server(greeting: bytes | None) -> Iterator[int]:
    """A port that accepts connections and either says ``greeting`` and hangs up (not HTTP), or never says a thing."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                if greeting is None:
                    held.append(conn)
                    continue
                with conn:
                    conn.sendall(greeting)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for conn in held:
            conn.close()


def register_mcp(client: httpx.Client, url: str, name: str | None = None, **args: Any) -> httpx.Response:
    name = name or unique("eg").replace("-", "")[:20]
    return call(client, "agora.mcp_servers.register", name=name, url=url, bearer_token=TOKEN, **args)


def server_names(client: httpx.Client) -> set[str]:
    return {s["name"] for s in ok(call(client, "agora.mcp_servers.list"))["servers"]}


def same_words(errors: dict[str, dict[str, Any]]) -> set[str]:
    """The distinct error bodies once each URL is taken out of its own."""
    return {repr({**e, "message": e["message"].replace(url, "<url>")}) for url, e in errors.items()}


def test_customers_and_agents_cannot_point_the_hub_at_internal_addresses(guarded, mcp_server, a2a_server):
    mcp_urls = [f"http://{host}:{mcp_server.port}/mcp" for host in INTERNAL_HOSTS] + PRIVATE
    card_urls = [f"http://{host}:{a2a_server.port}" for host in INTERNAL_HOSTS] + [u.rstrip("/") for u in PRIVATE]
    with guarded.client() as admin:
        customer = new_tenant(admin, guarded)
    with customer:
        agent = ok(call(customer, "agora.agents.register", agent_name=unique("me")))
        mcp = {url: expect_error(register_mcp(customer, url, timeout_seconds=2), 400, "invalid_argument") for url in mcp_urls}
        cards = {url: expect_error(call(customer, "agora.agents.register", agent_name=unique("r"), a2a_card_url=url, a2a_token=TOKEN), 400, "invalid_argument") for url in card_urls}
        with guarded.client(agent["agent_token"]) as me:  # an agent turning itself into a "remote agent" somewhere inside
            itself = {url: expect_error(call(me, "agora.agents.register", agent_name=agent["agent_name"], a2a_card_url=url), 400, "invalid_argument") for url in card_urls}
            assert ok(call(me, "agora.agents.get", agent=agent["agent_id"]))["a2a_remote"] is None
        assert server_names(customer) == set()
        assert ok(call(customer, "agora.query.agents", limit=100))["count"] == 1  # the refused remote agents are not there
    assert len(same_words(mcp)) == 1 and next(iter(mcp.values()))["details"] == {"field": "url"}
    assert len(same_words(cards)) == 1 and len(same_words(itself)) == 1
    assert next(iter(cards.values()))["details"] == {"field": "a2a_card_url"}


def test_the_admin_still_registers_local_servers(guarded, mcp_server, a2a_server):
    with guarded.client() as admin:
        server = register_mcp(admin, f"http://localhost:{mcp_server.port}/mcp")
        remote = call(admin, "agora.agents.register", agent_name=unique("local"), a2a_card_url=a2a_server.origin, a2a_token=TOKEN)
        name = ok(server)["name"]
        assert ok(server)["state"] == "up"
        assert ok(admin.post(f"/ext/{name}/add", json={"a": 2, "b": 3}))["structured_content"] == {"result": 5}
        assert ok(remote)["agent"]["a2a_remote"]["set_by_admin"] is True
        ok(call(admin, "agora.mcp_servers.remove", name=name))


def test_the_operator_s_allowlist_lets_a_customer_reach_an_allowed_local_address(allowing, mcp_server):
    with allowing.client() as admin:
        customer = new_tenant(admin, allowing)
    with customer:
        name = ok(register_mcp(customer, f"http://localhost:{mcp_server.port}/mcp"))["name"]
        assert ok(customer.post(f"/ext/{name}/shout", json={"text": "in"}))["structured_content"] == {"result": "IN"}
        expect_error(register_mcp(customer, "http://169.254.169.254/mcp"), 400, "invalid_argument")  # only what it names
        ok(call(customer, "agora.mcp_servers.remove", name=name))


def test_closed_open_silent_and_refused_ports_answer_alike(allowing, mcp_server):
    """Loopback allowed, so the hub really connects: what it says must not tell one port state from another."""
    with allowing.client() as admin:
        customer = new_tenant(admin, allowing)
    with customer, tcp_server(b"SSH-2.0-OpenSSH_9.2\r\n") as talker, tcp_server(None) as silent:
        mcp_targets = {
            "closed": f"http://127.0.0.1:{free_port()}/mcp",
            "open, HTTP but not MCP": f"{allowing.url}/ready",
            "open, not HTTP": f"http://127.0.0.1:{talker}/mcp",
            "open, silent": f"http://127.0.0.1:{silent}/mcp",
            "refused by the policy": "http://10.1.2.3:22/mcp",
            "MCP, but the wrong token": f"http://127.0.0.1:{mcp_server.port}/mcp?x",
        }
        mcp = {url: expect_error(call(customer, "agora.mcp_servers.register", name=unique("p").replace("-", "")[:20], url=url, timeout_seconds=1), 400, "invalid_argument")
               for url in mcp_targets.values()}  # fmt: skip
        card_targets = [f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{mcp_server.port}", f"http://127.0.0.1:{talker}", "http://10.1.2.3:22"]
        cards = {url: expect_error(call(customer, "agora.agents.register", agent_name=unique("r"), a2a_card_url=url), 400, "invalid_argument") for url in card_targets}
        assert server_names(customer) == set()
    assert len(same_words(mcp)) == 1, same_words(mcp)
    assert len(same_words(cards)) == 1, same_words(cards)
    assert "Errno" not in str(mcp) + str(cards) and "refused" not in str(mcp) + str(cards)


def test_a_refused_mcp_registration_leaves_no_trace(allowing, mcp_server):
    name = unique("once").replace("-", "")[:20]
    with allowing.client() as admin:
        customer = new_tenant(admin, allowing)
    with customer:
        expect_error(register_mcp(customer, f"{allowing.url}/ready", name=name, timeout_seconds=2), 400, "invalid_argument")
        assert name not in server_names(customer)
        assert not [s for s in ok(call(customer, "agora.discovery.list", category="ext"))["services"] if s["name"].startswith(f"ext.{name}.")]
        retried = ok(register_mcp(customer, f"http://127.0.0.1:{mcp_server.port}/mcp", name=name))  # not a conflict
        assert retried["state"] == "up" and f"ext.{name}.add" in retried["tools"]
        expect_error(register_mcp(customer, f"http://127.0.0.1:{mcp_server.port}/mcp", name=name), 409, "conflict")
        ok(call(customer, "agora.mcp_servers.remove", name=name))


def test_malformed_urls_are_refused_naming_their_field(guarded):
    with guarded.client() as admin:
        customer = new_tenant(admin, guarded)
    with customer:
        for url in MALFORMED:
            card = expect_error(call(customer, "agora.agents.register", agent_name=unique("bad"), a2a_card_url=url), 400, "invalid_argument")
            mcp = expect_error(register_mcp(customer, url), 400, "invalid_argument")
            listing = expect_error(call(customer, "agora.marketplace.publish", **_listing(url)), 400, "invalid_argument")
            assert (card["details"], mcp["details"], listing["details"]) == ({"field": "a2a_card_url"}, {"field": "url"}, {"field": "repository.url"}), url
        assert server_names(customer) == set()


def _listing(url: str) -> dict[str, Any]:
    return {"agent_name": unique("lst"), "repository": {"url": url}, "build_config": {"start_command": "python agent.py"}}


def test_customers_and_agents_list_only_public_http_repositories(guarded):
    with guarded.client() as admin:
        customer = new_tenant(admin, guarded)
    with customer:
        agent = ok(call(customer, "agora.agents.register", agent_name=unique("publisher")))
        with guarded.client(agent["agent_token"]) as me:
            for publisher in (customer, me):
                for url in ["http://127.0.0.1:9/x.git", "https://localhost/x.git", "http://[::ffff:10.0.0.1]/x.git", "http://169.254.169.254/x.git"]:
                    refused = expect_error(call(publisher, "agora.marketplace.publish", **_listing(url)), 400, "invalid_argument")
                    assert refused["details"] == {"field": "repository.url"}, url
                for url in ["ssh://git@example.com/x.git", "git@example.com:x/y.git", "git://example.com/x.git", "ext::sh -c id", "/srv/agents/x"]:
                    expect_error(call(publisher, "agora.marketplace.publish", **_listing(url)), 403, "permission_denied")
        assert ok(call(customer, "agora.marketplace.discover", text="lst"))["agents"] == []


async def test_webhooks_on_internal_addresses_are_refused_and_nothing_is_created(guarded):
    with guarded.client() as admin:
        customer = new_tenant(admin, guarded)
    with customer:
        agent = ok(call(customer, "agora.agents.register", agent_name=unique("front"), a2a={"access": "public"}))["agent_id"]
        other = ok(call(customer, "agora.agents.register", agent_name=unique("caller")))["agent_token"]
        key = customer.headers["authorization"].split()[1]
        tasks_before = ok(call(customer, "agora.task.list"))["total"]
    url = f"{guarded.url}/a2a/agents/{agent}"
    for caller in (None, key, other):  # anonymous, a customer key and an agent of the agent's own tenant
        async with a2a_client(url, key=caller) as client:
            for hook in [f"http://127.0.0.1:{free_port()}/hook", "http://localhost/hook", "http://169.254.169.254/latest", *MALFORMED[:2]]:
                request = message("hi", "egress")
                request.configuration.return_immediately = True
                request.configuration.task_push_notification_config.url = hook
                with pytest.raises(InvalidParamsError) as inline:
                    [e async for e in client.send_message(request)]
                assert inline.value.data == {"field": "url"}, hook
            plain = message("hi", "egress")
            plain.configuration.return_immediately = True
            task = [e async for e in client.send_message(plain)][0].task
            with pytest.raises(InvalidParamsError):
                await client.create_task_push_notification_config(pb.TaskPushNotificationConfig(task_id=task.id, id="x", url="http://10.0.0.1/"))
            listed = await client.list_task_push_notification_configs(pb.ListTaskPushNotificationConfigsRequest(task_id=task.id))
            assert list(listed.configs) == []
    with guarded.client(key) as customer:  # a refused inline webhook sent nothing: only the plain messages made tasks
        assert ok(call(customer, "agora.task.list"))["total"] == tasks_before + 3


# -- the policy where connections are made ---------------------------------------------------------------------------


@pytest.mark.parametrize("http", [httpx, httpx2])
async def test_every_connection_is_checked_on_the_address_it_goes_to(http, mcp_server):
    """A name is resolved and checked when the connection is made (a name that resolves to loopback is refused like
    the address), for httpx and httpx2 alike; the admin, and an allowlisted network, are let through."""
    url = f"http://localhost:{mcp_server.port}/mcp"
    policy, allowing = EgressPolicy(), EgressPolicy.parse(["127.0.0.0/8"])
    for egress in (policy.acting_for(admin=False), EgressPolicy(admin_exempt=False).acting_for(admin=True)):
        async with egress.client(http, timeout=5) as client:
            with pytest.raises(http.ConnectError):
                await client.get(url)
    for egress in (policy.acting_for(admin=True), allowing.acting_for(admin=False)):
        async with egress.client(http, timeout=5) as client:
            assert (await client.get(url)).status_code == 401  # reached: it wants its token
    denied = EgressPolicy.parse(["127.0.0.0/8"], deny=["localhost"]).acting_for(admin=True)
    async with denied.client(http, timeout=5) as client:  # the denylist binds the admin too
        with pytest.raises(http.ConnectError):
            await client.get(url)


class GitHttp:
    """A repository served over git's smart HTTP (``git http-backend``), on 127.0.0.1."""

    def __init__(self, root: Path):
        work = root / "work"
        work.mkdir(parents=True)
        (work / "agent.py").write_text("print('hi')\n")
        for argv in (["init", "-q", "-b", "main"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one"]):
            subprocess.run(["git", *argv], cwd=work, check=True)
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(root / "repo.git")], check=True)
        backend_root = str(root)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._cgi(b"")

            def do_POST(self) -> None:
                self._cgi(self.rfile.read(int(self.headers.get("Content-Length", 0))))

            def _cgi(self, body: bytes) -> None:
                path, _, query = self.path.partition("?")
                env = {"GIT_PROJECT_ROOT": backend_root, "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": path, "QUERY_STRING": query,
                       "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                       "CONTENT_LENGTH": str(len(body)), "GIT_PROTOCOL": self.headers.get("Git-Protocol", "")}  # fmt: skip
                out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=True).stdout
                head, _, payload = out.partition(b"\r\n\r\n")
                headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if line)
                self.send_response(int(headers.pop("Status", "200").split()[0]))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass  # keep the test output quiet

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.port = self.server.server_address[1]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_hosting_node_clones_only_where_the_policy_lets_it(tmp_path):
    git = await asyncio.to_thread(GitHttp, tmp_path / "git")
    try:
        url = f"http://localhost:{git.port}/repo.git"
        refused = Builds(tmp_path / "refused", egress=EgressPolicy().acting_for(admin=False))
        with pytest.raises(BuildError) as error:
            await refused.ensure("lst", 1, {"url": url}, {})
        assert "does not fetch" in str(error.value) and not (tmp_path / "refused" / "lst" / "v1").exists()
        allowed = Builds(tmp_path / "allowed", egress=EgressPolicy.parse(["127.0.0.1/32"]).acting_for(admin=False))
        built = await allowed.ensure("lst", 1, {"url": url, "branch": "main"}, {})  # connects to the pinned address
        assert (built / "agent.py").read_text() == "print('hi')\n"
        with pytest.raises(BuildError) as command:  # a repository that is a command is never run, whoever listed it
            await allowed.ensure("ext", 1, {"url": f"ext::sh -c touch% {tmp_path}/ran"}, {})
        assert "transport 'ext' not allowed" in "\n".join(command.value.output_tail) and not (tmp_path / "ran").exists()
    finally:
        git.close()
