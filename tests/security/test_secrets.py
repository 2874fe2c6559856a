"""Secrets are write-only (issue 24, item 5): a listing's env_vars, an instance's env, credentials in URLs, MCP upstream
credentials and push-notification tokens are stored and used, and shown to nobody: reads give names with a mask,
refusals do not quote them, and neither the audit log nor the hub's log holds them. The instance process still gets
the real values."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError

from agora_sdk.wire.common import SECRET_MASK

from ..conftest import call, new_tenant, ok, unique, until
from ..hubproc import FixtureServer, HubProcess
from ..test_a2a import AgentProcess, Webhook, a2a_client, message, send
from ..test_a2a import until as until_async
from ..test_gateway import TOKEN, mcp_url, upstream  # noqa: F401 - upstream is a fixture
from ..test_marketplace import listing, market_hub, settled, terminate

def secret() -> str:
    return f"s3cret-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub with its own hosting node, whose customers may reach 127.0.0.1 (where the tests' listings point)."""
    yield from market_hub(tmp_path_factory.mktemp("secrets-market"), AGORA_EGRESS_ALLOW="127.0.0.1/32")


def kept(hub: HubProcess, *secrets: str) -> None:
    """None of ``secrets`` is in the audit log (read with the admin's tool) or in the hub's log."""
    with hub.client() as admin:
        audit = call(admin, "agora.admin.audit", limit=500).text
    log = hub.log_path.read_text(errors="replace")
    for value in secrets:
        assert value not in audit, "a secret is in the audit log"
        assert value not in log, "a secret is in the hub's log"


def refused_quietly(response: httpx.Response, status: int, *secrets: str) -> None:
    assert response.status_code == status, response.text
    for value in secrets:
        assert value not in response.text, f"the refusal quotes the secret: {response.text}"


def test_listings_show_env_var_names_and_no_values(market: HubProcess) -> None:
    """The publisher (and the admin) see each name with the mask, other tenants no value either; a repository URL's
    credentials read back masked."""
    api_key, token = secret(), secret()
    category = unique("sec")
    body = listing(
        category=category,
        repository={"url": f"http://deploy:{token}@127.0.0.1:9/agent.git"},
        build_config={"env_vars": {"API_KEY": api_key}},
    )
    with market.client() as admin, new_tenant(admin, market) as publisher, new_tenant(admin, market) as stranger:
        published = ok(call(publisher, "agora.marketplace.publish", **body))
        assert published["build_config"]["env_vars"] == {"API_KEY": SECRET_MASK}
        assert published["repository"]["url"] == f"http://{SECRET_MASK}@127.0.0.1:9/agent.git"
        views = {
            "publisher": ok(call(publisher, "agora.marketplace.discover", category=category)),
            "admin": ok(admin.get("/marketplace/agents", params={"category": category})),
            "stranger": ok(call(stranger, "agora.marketplace.discover", category=category)),
        }
        for who, view in views.items():
            [shown] = view["agents"]
            assert shown["build_config"]["env_vars"] == {"API_KEY": SECRET_MASK}, who
            assert api_key not in str(view) and token not in str(view), who
    kept(market, api_key, token)


def test_instance_env_reads_masked_and_the_process_gets_the_values(market: HubProcess) -> None:
    listing_secret, customer_secret = secret(), secret()
    body = listing(build_config={
        "type": "custom", "build_command": None, "env_vars": {"LISTING_SECRET": listing_secret},
        "start_command": 'printf "%s %s" "$LISTING_SECRET" "$CUSTOMER_SECRET" > seen.txt; exec sleep 600',
    })  # fmt: skip
    with market.client() as admin, new_tenant(admin, market) as customer:
        published = ok(call(admin, "agora.marketplace.publish", **body))
        created = ok(call(customer, "agora.marketplace.create_instance", agent_id=published["listing_id"],
                          instance_config={"env": {"CUSTOMER_SECRET": customer_secret}}))  # fmt: skip
        iid = created["instance_id"]
        seen = market.data_dir / "node" / "instances" / iid / "seen.txt"
        until(lambda: seen.is_file() and seen.read_text(), "the instance never wrote what it was given")
        assert seen.read_text() == f"{listing_secret} {customer_secret}"  # the process has the real values

        reads = {
            "created": created["instance"],
            "get": settled(customer, iid, "running"),
            "list": ok(call(customer, "agora.marketplace.list_instances"))["instances"][0],
            "admin": ok(admin.get(f"/marketplace/instances/{iid}")),
        }
        for who, read in reads.items():
            assert read["instance_config"]["env"] == {"CUSTOMER_SECRET": SECRET_MASK}, who
            assert customer_secret not in str(read) and listing_secret not in str(read), who
        terminate(customer, iid)
    kept(market, listing_secret, customer_secret)


def test_an_agent_manifest_reads_env_var_names_only(sqlite_hub: HubProcess) -> None:
    value = secret()
    build = {"type": "python", "start_command": "python agent.py", "env_vars": {"DB_PASSWORD": value}}
    manifest = {"build_config": build}
    with sqlite_hub.client() as admin:
        registered = ok(call(admin, "agora.agents.register", agent_name=unique("man"), manifest=manifest))
        got = ok(call(admin, "agora.agents.get", agent=registered["agent_id"]))
    for read in (registered["agent"], got):
        assert read["manifest"]["build_config"]["env_vars"] == {"DB_PASSWORD": SECRET_MASK}
    assert value not in str(registered) + str(got)


def test_mcp_upstream_credentials_are_never_returned(sqlite_hub: HubProcess, upstream: FixtureServer) -> None:
    header = secret()
    name = unique("sec").replace("-", "")[:20]
    with sqlite_hub.client() as admin:
        registered = ok(call(admin, "agora.mcp_servers.register", name=name, url=mcp_url(upstream), bearer_token=TOKEN,
                             headers={"X-Api-Key": header}))  # fmt: skip
        listed = ok(call(admin, "agora.mcp_servers.list"))
        added = ok(admin.post(f"/ext/{name}/add", json={"a": 1, "b": 2}))  # the credentials are still used
    assert registered["state"] == "up" and added
    for read in (registered, listed):
        assert TOKEN not in str(read) and header not in str(read)
    kept(sqlite_hub, TOKEN, header)


async def test_push_config_tokens_and_credentials_are_never_returned(sqlite_hub: HubProcess) -> None:
    token, credentials = secret(), secret()
    agent = AgentProcess(sqlite_hub, sqlite_hub.admin_key).start()
    hook = Webhook()
    try:
        async with a2a_client(agent.url, streaming=True, key=sqlite_hub.admin_key) as client:
            waiting = (await send(client, message("start", "tck-input-required"))).task
            config = pb.TaskPushNotificationConfig(task_id=waiting.id, id="hook", url=hook.url, token=token)
            config.authentication.scheme, config.authentication.credentials = "Bearer", credentials
            made = await client.create_task_push_notification_config(config)
            ref = pb.GetTaskPushNotificationConfigRequest(task_id=waiting.id, id="hook")
            fetched = await client.get_task_push_notification_config(ref)
            listed = await client.list_task_push_notification_configs(pb.ListTaskPushNotificationConfigsRequest(task_id=waiting.id))
            bad = pb.TaskPushNotificationConfig(task_id=waiting.id, id="bad", url=hook.url, token=f"line\n{token}")
            with pytest.raises(InvalidParamsError) as refused:
                await client.create_task_push_notification_config(bad)
            await send(client, message("go on", "tck-complete-task", task_id=waiting.id))
            await until_async(lambda: "TASK_STATE_COMPLETED" in hook.states())
    finally:
        hook.close()
        agent.stop()
    for read in (made, fetched, *listed.configs):
        assert read.url == hook.url and read.authentication.scheme == "Bearer"
        assert not read.token and not read.authentication.credentials
        assert token not in str(read) and credentials not in str(read)
    assert token not in str(refused.value)
    assert hook.received, "the webhook got nothing"
    for headers, _ in hook.received:  # the hub still sends them
        assert headers["x-a2a-notification-token"] == token and headers["authorization"] == f"Bearer {credentials}"
    kept(sqlite_hub, token, credentials)


def test_a_refused_secret_is_not_quoted(market: HubProcess, upstream: FixtureServer) -> None:
    """A bad value in a secret field, or a refused URL that carries credentials: 4xx, without the secret."""
    values = [secret() for _ in range(6)]
    with market.client() as admin, new_tenant(admin, market) as customer:
        private = listing(repository={"url": f"http://deploy:{values[0]}@10.0.0.1/agent.git"})
        refused_quietly(call(customer, "agora.marketplace.publish", **private), 400, values[0])
        not_text = listing(build_config={"env_vars": {"API_KEY": [values[1]]}})
        refused_quietly(call(admin, "agora.marketplace.publish", **not_text), 422, values[1])
        refused_quietly(call(admin, "agora.mcp_servers.register", name=unique("sec").replace("-", "")[:20],
                             url=f"http://user:{values[2]}@127.0.0.1:9/mcp"), 400, values[2])  # fmt: skip
        refused_quietly(call(admin, "agora.mcp_servers.register", name=unique("sec").replace("-", "")[:20],
                             url=mcp_url(upstream), bearer_token=f"line\n{values[3]}"), 422, values[3])  # fmt: skip
        refused_quietly(call(admin, "agora.agents.register", agent_name=unique("remote"),
                             a2a_card_url=f"http://user:{values[4]}@127.0.0.1:9/"), 400, values[4])  # fmt: skip
        refused_quietly(call(admin, "agora.agents.register", agent_name=unique("remote"),
                             a2a_card_url=upstream.origin, a2a_token=f"tab\t{values[5]}"), 422, values[5])  # fmt: skip
    kept(market, *values)


def test_keys_are_stored_as_hashes_only(sqlite_hub: HubProcess) -> None:
    """What the store holds of a key is its SHA-256 and a short prefix; the key itself is nowhere in the database."""
    with sqlite_hub.client() as admin:
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("hashed")))
    keys = [created["key"], agent["agent_token"]]
    with contextlib.closing(sqlite3.connect(f"file:{sqlite_hub.data_dir / 'agora.db'}?mode=ro", uri=True)) as db:
        hashes = {row[0] for row in db.execute("SELECT key_hash FROM api_keys")}
        dump = "\n".join(db.iterdump())
    for key in keys:
        assert hashlib.sha256(key.encode()).hexdigest() in hashes
        assert key not in dump and key[len(key) // 2 :] not in dump
