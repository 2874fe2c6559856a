"""``client.conversations``: the catalog's conversation tools, and ``resume`` — a conversation taken up again from
any device, with its turns so far and ``send`` for the next one (the agent receives the earlier turns with it)."""

from __future__ import annotations

from typing import Any

from ._tools import AsyncConversationsTools, ConversationsTools
from .wire.conversations import Continued, Conversation, SendAs, Turn


class _Session:
    """What the sync and async sessions share: the conversation as last read."""

    def __init__(self, conversation: Conversation, tenant: str | None):
        self.conversation = conversation
        self._tenant = tenant

    @property
    def conversation_id(self) -> str:
        return self.conversation.conversation_id

    @property
    def turns(self) -> list[Turn]:
        """Its turns as last read, oldest first (``refresh`` reads them again)."""
        return self.conversation.turns

    def _sending(self, text: str | None, content: dict[str, Any] | None, **options: Any) -> dict[str, Any]:
        given = {"text": text, "content": content, "tenant": self._tenant, **options}
        return {k: v for k, v in given.items() if v is not None}


class ConversationSession(_Session):
    def __init__(self, tools: ConversationsTools, conversation: Conversation, tenant: str | None):
        super().__init__(conversation, tenant)
        self._tools = tools

    def refresh(self, limit: int = 100) -> Conversation:
        self.conversation = self._tools.get(self.conversation_id, **self._sending(None, None, limit=limit))
        return self.conversation

    def send(
        self, text: str | None = None, *, content: dict[str, Any] | None = None, to_agent: str | None = None,
        send_as: SendAs | str | None = None, history: int = 20,
    ) -> Continued:
        """The next turn, to the conversation's agent (the last to speak, or ``to_agent``) with ``history`` earlier turns."""
        return self._tools.send(self.conversation_id, **self._sending(text, content, to_agent=to_agent, send_as=send_as, history=history))


class AsyncConversationSession(_Session):
    def __init__(self, tools: AsyncConversationsTools, conversation: Conversation, tenant: str | None):
        super().__init__(conversation, tenant)
        self._tools = tools

    async def refresh(self, limit: int = 100) -> Conversation:
        self.conversation = await self._tools.get(self.conversation_id, **self._sending(None, None, limit=limit))
        return self.conversation

    async def send(
        self, text: str | None = None, *, content: dict[str, Any] | None = None, to_agent: str | None = None,
        send_as: SendAs | str | None = None, history: int = 20,
    ) -> Continued:
        """The next turn, to the conversation's agent (the last to speak, or ``to_agent``) with ``history`` earlier turns."""
        return await self._tools.send(self.conversation_id, **self._sending(text, content, to_agent=to_agent, send_as=send_as, history=history))


class Conversations(ConversationsTools):
    def resume(self, conversation_id: str, *, tenant: str | None = None, limit: int = 100) -> ConversationSession:
        """The conversation, to go on with: its last ``limit`` turns read now."""
        found = self.get(conversation_id, **({"tenant": tenant} if tenant else {}), limit=limit)
        return ConversationSession(self, found, tenant)


class AsyncConversations(AsyncConversationsTools):
    async def resume(self, conversation_id: str, *, tenant: str | None = None, limit: int = 100) -> AsyncConversationSession:
        """The conversation, to go on with: its last ``limit`` turns read now."""
        found = await self.get(conversation_id, **({"tenant": tenant} if tenant else {}), limit=limit)
        return AsyncConversationSession(self, found, tenant)
