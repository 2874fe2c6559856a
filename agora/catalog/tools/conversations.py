"""agora.conversations.*: a tenant's conversations, read as a thread and continued with their history."""

from datetime import date
from typing import Any

from agora.core.auth import Scope
from agora.core.services import conversations
from agora_sdk.wire import conversations as w

from ..tool import Tool

COMMON: dict[str, Any] = {"version": "1.0.0", "last_updated": date(2026, 11, 29)}
READ = frozenset({Scope.messaging_read.value})

TOOLS = [
    Tool(
        name="agora.conversations.list",
        description=(
            "The tenant's conversations (messages and tasks sharing a conversation_id, A2A turns by contextId), the last "
            "active first: participants, summary line, turn count, last activity; only one agent's with 'agent'."
        ),
        input_model=w.ListConversations,
        output_model=w.ConversationList,
        handler=conversations.list_conversations,
        scopes=READ,
        read_only=True,
        **COMMON,
    ),
    Tool(
        name="agora.conversations.get",
        description="A conversation as a thread, oldest turn first: each message, and each task with its output so far, status and result.",
        input_model=w.GetConversation,
        output_model=w.Conversation,
        handler=conversations.get,
        scopes=READ,
        read_only=True,
        **COMMON,
    ),
    Tool(
        name="agora.conversations.send",
        description=(
            "Say the next thing in a conversation: sent to its agent (the last to speak, or 'to_agent') as it last received "
            "a turn, a message or a task of the same type, with the earlier turns as history (context.history or "
            "payload.history: role, sender, text, at), in the same conversation."
        ),
        input_model=w.SendToConversation,
        output_model=w.Continued,
        handler=conversations.send,
        scopes=frozenset({Scope.messaging_send.value}),
        **COMMON,
    ),
]
