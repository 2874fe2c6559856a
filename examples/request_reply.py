"""A request/reply pair: Asker asks PriceOracle for a quote and waits for the answer in the same conversation.

The request carries a reply deadline (expected.timeout_ms): had the oracle not answered in time, the hub would have
sent Asker a `failure` message with intent `timeout` instead. Run it beside `agora serve`:

    python examples/request_reply.py widget
"""

import asyncio
import sys
import uuid

from agora_sdk import Agent, AsyncAgoraClient

oracle = Agent("PriceOracle", capabilities=["pricing"])
PRICES = {"widget": 9.5, "gadget": 24.0}


@oracle.on_message(performative="request")
async def quote(msg):
    item = msg.content["item"]
    await msg.reply({"item": item, "price": PRICES.get(item)}, performative="inform")


async def main(item: str) -> None:
    await oracle.start()
    async with AsyncAgoraClient() as asker:
        await asker.register("Asker")
        conversation = f"quote-{uuid.uuid4().hex[:8]}"
        await asker.messaging.send(
            "PriceOracle", {"item": item}, performative="request",
            correlation={"conversation_id": conversation}, expected={"type": "inform", "timeout_ms": 5000},
        )
        inbox = await asker.messaging.receive(conversation_id=conversation, wait=10)
        answer = inbox[0]
        await asker.messaging.ack([answer.message_id])
        print(f"{answer.performative}: {answer.content['item']} costs {answer.content['price']}")
    await oracle.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "widget"))
