"""The marketplace chat (``agora.marketplace.chat``, seed 001's ``POST …/chat``): a message in, an answer with the
tool results it rests on; and the catalog counts it answers statistics from (``agora.marketplace.stats``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field

from .common import Input, JSONObject, JSONValue, Output, id_pattern

MAX_MESSAGE_CHARS = 4000


def _says_something(message: str) -> str:
    if not message.strip():
        raise ValueError("the message is only whitespace: say what you are looking for")
    return message


class Chat(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("message",)

    message: Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS), AfterValidator(_says_something)] = Field(
        description="What the person or agent asks, in their own words ('find a French translator under a cent a "
        "request', 'tell me more about the second one', 'start an instance of it')."
    )
    conversation_id: str | None = Field(
        None, pattern=id_pattern("conv"), description="Continue this conversation (its earlier results and the entry it is about)."
    )


class Planner(StrEnum):
    deterministic = "deterministic"  # the hub's own reader and templates
    llm = "llm"  # the configured language model, planning with the same tools


class Intent(StrEnum):
    search = "search"
    details = "details"
    stats = "stats"
    start_instance = "start_instance"
    register_agent = "register_agent"
    help = "help"


class CallStatus(StrEnum):
    used = "used"  # called, and it answered
    failed = "failed"  # called, and it refused or failed (reason: its error)
    refused = "refused"  # not called: the caller may not use it, or the user's message did not ask for it


class ToolUse(Output):
    tool: str
    status: CallStatus
    arguments: JSONObject
    reason: str | None = Field(None, description="Why it was refused, or the error it answered.")


class ToolResult(Output):
    """A tool's answer, as it gave it: what the chat's answer rests on."""

    tool: str
    arguments: JSONObject
    result: JSONValue


class Understood(Output):
    intent: Intent
    params: JSONObject = Field(description="need, filters, name, category, capabilities: as read from the message.")


class ChatAnswer(Output):
    response: str = Field(description="The answer in words, made only from the tool results in data.")
    data: list[ToolResult] = Field(description="The tool results the answer rests on.")
    tools_used: list[str] = Field(description="The tools the chat called or asked for, by name (details in tool_calls).")
    tool_calls: list[ToolUse] = Field(description="Every tool call of this turn, in order, with its status and reason.")
    conversation_id: str = Field(description="Send it back to continue the conversation.")
    planner: Planner
    notice: str | None = Field(None, description="Set when the answer did not come the usual way (the LLM was down).")
    understood: Understood = Field(
        description="How the hub's own reader understood the message; on the LLM path it decides which changes the LLM may make."
    )


class CatalogStatsQuery(Input):
    category: str | None = Field(None, min_length=1, max_length=64, description="Only this category.")


class CatalogStats(Output):
    """What the caller can find with agora.marketplace.search, counted."""

    category: str | None
    listings: int
    agents: int = Field(description="Registered agents the caller sees (its tenant's; every tenant's for the admin).")
    listings_by_category: dict[str, int]
    listings_by_pricing_model: dict[str, int]
    listings_by_region: dict[str, int] = Field(description="'unspecified' for listings that state none.")


class ChatEvent(Output):
    """One event of a streamed answer (``Accept: text/event-stream``): ``tool`` (a tool call as it happens),
    ``text`` (the answer's words as they come), ``notice``, and ``answer`` (the whole ChatAnswer, last)."""

    event: str
    data: dict[str, Any]
