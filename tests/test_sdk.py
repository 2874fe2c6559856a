"""The client package stands alone and maps hub errors back to typed exceptions."""

from __future__ import annotations

import subprocess
import sys

import pytest

from agora_sdk import (
    AgoraClient,
    AsyncAgoraClient,
    NotFound,
    Unauthenticated,
    Unavailable,
)

from .conftest import unique
from .hubproc import free_port


def test_sdk_never_imports_the_server():
    code = (
        "import sys, agora_sdk, agora_sdk.wire.agents, agora_sdk.wire.admin, agora_sdk.wire.discovery; "
        "leaked = [m for m in sys.modules if m == 'agora' or m.startswith('agora.')]; "
        "assert not leaked, leaked"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_sync_client_calls_tools_and_raises_typed_errors(sqlite_hub):
    with AgoraClient(sqlite_hub.url, data_dir=sqlite_hub.data_dir) as client:
        assert client.config.key_source.endswith("admin.key")
        reg = client.call("agora.agents.register", agent_name=unique(), capabilities=["sdk"])
        assert client.call("agents.get", agent=reg["agent_id"])["agent_name"] == reg["agent_name"]
        with pytest.raises(NotFound) as err:
            client.call("agora.agents.get", agent="nobody")
        assert err.value.code == "not_found" and err.value.status == 404
    with AgoraClient(sqlite_hub.url, "agora_sk_wrong") as client, pytest.raises(Unauthenticated):
        client.call("agora.admin.health")
    with AgoraClient(f"http://127.0.0.1:{free_port()}", "agora_sk_x") as client, pytest.raises(Unavailable):
        client.call("agora.admin.health")


async def test_async_client_has_the_same_api(sqlite_hub):
    async with AsyncAgoraClient(sqlite_hub.url, sqlite_hub.admin_key) as client:
        health = await client.call("agora.admin.health")
        assert health["status"] == "healthy"
        with pytest.raises(NotFound):
            await client.call("agora.nope.tool")
