"""send: message send throughput over HTTP, one message per call and 500 per send_batch call."""

from __future__ import annotations

import json

from ..bench import Bench, call_hub, hub_request
from ..load import StaticBody
from ..report import LoadRecord, at_least
from ..servers import hub_server
from ..stores import StoreProvider
from .ceiling import ceiling_for

NAME = "send"
TARGET_CEILING_RATIO = 0.5
BATCH = 500
TARGET_BATCH_MESSAGES = 20_000


def _body(payload: dict) -> StaticBody:
    return StaticBody(json.dumps(payload, separators=(",", ":")).encode())


def run(bench: Bench, store: StoreProvider | None) -> None:
    assert store is not None
    ceiling = ceiling_for(bench, bench.throughput)
    spec = store.fresh()
    with hub_server(spec) as hub:
        sender = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "bench-sender"})
        receiver = call_hub(hub, spec.admin_key, "/agora/agents/register", {"agent_name": "bench-receiver"})
        message = {"to_agent": receiver["agent_id"], "content": {"text": "hello", "n": 1}, "message_type": "info"}

        bench.step(f"{NAME}: POST /agora/messaging/send as an agent, {bench.throughput.label}")
        single = bench.drive(hub, hub_request(hub, sender["agent_token"], "/agora/messaging/send", _body(message)), bench.throughput)
        bench.add(
            LoadRecord(
                NAME, store.kind.value, "1 message per call", single, ceiling,
                at_least(single.rps / ceiling.rps, TARGET_CEILING_RATIO, f"≥ {TARGET_CEILING_RATIO}× ceiling"),
            )
        )

        bench.step(f"{NAME}: POST /agora/messaging/send_batch ({BATCH} messages) as an agent, {bench.throughput.label}")
        batch = _body({"messages": [message] * BATCH})
        result = bench.drive(hub, hub_request(hub, sender["agent_token"], "/agora/messaging/send_batch", batch), bench.throughput)
        per_second = result.rps * BATCH
        bench.add(
            LoadRecord(
                NAME, store.kind.value, f"send_batch of {BATCH}", result, None,
                at_least(per_second, TARGET_BATCH_MESSAGES, f"≥ {TARGET_BATCH_MESSAGES:,} msg/s"),
                notes=f"{per_second:,.0f} messages/s",
            )
        )
