"""``agora.marketplace.chat`` (seed 001's ``POST …/chat``): a message answered from the catalog's own tools.

A turn: the conversation's memory is loaded (another tenant's is a 404, like one that never was); the message is read
by the deterministic reader (``agora/chat/reading.py``); with an LLM configured (``--llm-url``), the LLM plans with
the tools, writes only as the guard allows, and answers; without one, or when it fails, the deterministic planner
answers and the answer says so (``notice``). The answer carries every tool result it rests on (``data``), every call
(``tool_calls``), and the reader's understanding; the turn is remembered (bounded, expiring).
"""

from __future__ import annotations

import logging

from agora.core.call_events import emit
from agora.core.context import CallContext
from agora.core.ids import new_id
from agora.store.ops import chat as chat_ops
from agora_sdk.wire import chat as w

from . import llm
from .deterministic import Answer, Deterministic, resolve
from .guard import WriteGuard
from .memory import LIFETIME, Entry, Memory, Outcome, Turn
from .reading import WRITE_INTENTS, Reading, read
from .toolbox import AGENT, LISTING, SEARCH, Toolbox

log = logging.getLogger("agora.chat")


async def chat(ctx: CallContext, req: w.Chat) -> w.ChatAnswer:
    p, now = ctx.principal, ctx.clock.now()
    stored = await ctx.store.read(chat_ops.memory, req.conversation_id, p.tenant_scope(), now) if req.conversation_id else None
    memory = Memory.of(stored)
    reading = read(req.message)
    toolbox = Toolbox(ctx)
    model = ctx.hub.llm
    answer, notice = None, None
    if model is not None:
        try:
            answer = await _with_model(model, req.message, reading, memory, toolbox)
        except llm.LlmFailed as failure:
            notice = f"The language model at {model.url} failed: {failure}. This answer is the deterministic planner's."
            log.warning("chat LLM failed, answering deterministically", extra={"reason": str(failure)})
            emit("notice", {"notice": notice})
    planner = w.Planner.llm if answer is not None else w.Planner.deterministic
    if answer is None:
        answer = await Deterministic(toolbox, memory).answer(reading)
        emit("text", {"delta": answer.response})  # a stream's words are the answer's, whichever planner wrote them
    conversation_id = req.conversation_id or new_id("conv")
    outcome = Outcome(Turn(req.message, answer.understood.intent.value, answer.response, toolbox.names), answer.results, answer.focus)
    await ctx.store.write(chat_ops.save, conversation_id, p.tenant_id, p.label, outcome.applied_to, now, now + LIFETIME)
    return w.ChatAnswer(
        response=answer.response, data=toolbox.results, tools_used=toolbox.names, tool_calls=toolbox.uses,
        conversation_id=conversation_id, planner=planner, notice=notice, understood=answer.understood,
    )  # fmt: skip


async def _with_model(model: llm.LanguageModel, message: str, reading: Reading, memory: Memory, toolbox: Toolbox) -> Answer:
    """The LLM's answer. When the message asks for a change, what it names is resolved first (as the caller, from
    the message's words), so the guard knows the one change the LLM may make."""
    target = await resolve(reading, memory, toolbox) if reading.intent in WRITE_INTENTS else None
    response = await llm.plan(model, message, memory, toolbox, WriteGuard(reading, target))
    params = {"name": target.name} if target else reading_params(reading)
    results, focus = _remembered(toolbox)
    return Answer(response, w.Understood(intent=reading.intent, params=params), results, focus or target)


def reading_params(reading: Reading) -> dict[str, object]:
    """The reader's parameters without the tools' help (the LLM path settles names and categories itself)."""
    if reading.intent is w.Intent.search:
        return {"need": reading.need, **reading.wanted.params()}
    if reading.intent is w.Intent.register_agent and reading.new_agent:
        return {"name": reading.new_agent.name, "capabilities": reading.new_agent.capabilities}
    if reading.reference and reading.reference.words and not reading.reference.pronoun:  # "it": words around it
        return {"name": reading.reference.words}
    return {}


def _remembered(toolbox: Toolbox) -> tuple[list[Entry] | None, Entry | None]:
    """What the LLM's tool results add to the conversation: the last search's hits, the last entry read."""
    results, focus = None, None
    for found in toolbox.results:
        result = found.result if isinstance(found.result, dict) else {}
        if found.tool == SEARCH:
            results = [Entry(h["kind"], h["id"], h["name"]) for h in result.get("results", [])]
        elif found.tool == LISTING:
            focus = Entry("listing", result["listing_id"], result["agent_name"])
        elif found.tool == AGENT:
            focus = Entry("agent", result["agent_id"], result["agent_name"])
    return results, focus
