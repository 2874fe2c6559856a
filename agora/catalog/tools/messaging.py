"""agora.messaging.*"""

from datetime import date

from agora.core.auth import Scope
from agora.core.services import messaging
from agora_sdk.wire import messaging as w

from ..tool import Tool

SEND = frozenset({Scope.messaging_send.value})
READ = frozenset({Scope.messaging_read.value})
RECEIVE = frozenset({Scope.messaging_receive.value})  # taking deliveries changes the inbox: not for a viewer

TOOLS = [
    Tool(
        name="agora.messaging.send",
        version="1.0.0",
        description=(
            "Send a message to an agent (id or name), to every agent of the tenant ('broadcast') or to a topic. "
            "It is committed before the receipt is returned and waits in the recipient's inbox until acked. "
            "The sender is the calling agent. An idempotency_key makes resends safe."
        ),
        input_model=w.SendMessage,
        output_model=w.MessageReceipt,
        handler=messaging.send,
        scopes=SEND,
    ),
    Tool(
        name="agora.messaging.send_batch",
        version="1.0.0",
        description="Send up to 1,000 messages in one call, atomically (all are stored, or none when one is refused).",
        input_model=w.SendBatch,
        output_model=w.BatchReceipt,
        handler=messaging.send_batch,
        scopes=SEND,
    ),
    Tool(
        name="agora.messaging.publish",
        version="1.0.0",
        description="Publish a message to a topic; every subscription whose pattern matches receives it.",
        input_model=w.PublishMessage,
        output_model=w.MessageReceipt,
        handler=messaging.publish,
        scopes=SEND,
    ),
    Tool(
        name="agora.messaging.receive",
        version="1.0.0",
        description=(
            "Take messages from an inbox, urgent first. Each is hidden for visibility_timeout seconds and comes "
            "back (delivery_count + 1) unless acked. 'wait' long-polls when the inbox is empty."
        ),
        input_model=w.Receive,
        output_model=w.Inbox,
        handler=messaging.receive,
        scopes=RECEIVE,
        new_work=False,
        long_running=True,  # 'wait' holds the call up to a minute
    ),
    Tool(
        name="agora.messaging.ack",
        version="1.0.0",
        description="Acknowledge messages by id, or every delivered message up to a cursor; acked messages are never redelivered.",
        input_model=w.Ack,
        output_model=w.Acked,
        handler=messaging.ack,
        scopes=RECEIVE,
        new_work=False,
    ),
    Tool(
        name="agora.messaging.search",
        version="1.0.0",
        description=(
            "Search stored messages, newest first: by sender, recipient (agent id or name), topic, kind, "
            "message_type, performative, a time range (since/until) and a substring of the content; cursor "
            "pagination. A customer key finds its tenant's messages, the admin every tenant's (or one 'tenant'); an "
            "agent's key finds the messages it sent, those sent directly to it and its tenant's broadcasts (not other "
            "agents' topic messages: which reached it depends on its subscriptions over time)."
        ),
        input_model=w.SearchMessages,
        output_model=w.MessageSearch,
        handler=messaging.search,
        scopes=READ,
        read_only=True,
        last_updated=date(2026, 11, 25),
    ),
    Tool(
        name="agora.messaging.subscribe",
        version="1.0.0",
        description="Subscribe an agent to topic patterns (e.g. 'builds.*') and event types; durable, with its own read position.",
        input_model=w.Subscribe,
        output_model=w.Subscription,
        handler=messaging.subscribe,
        scopes=RECEIVE,
    ),
    Tool(
        name="agora.messaging.unsubscribe",
        version="1.0.0",
        description="Remove a subscription.",
        input_model=w.Unsubscribe,
        output_model=w.Unsubscribed,
        handler=messaging.unsubscribe,
        scopes=RECEIVE,
        new_work=False,
    ),
]
