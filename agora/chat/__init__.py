"""The marketplace chat (``agora.marketplace.chat``, ``turn.chat``): a message read by the deterministic reader
(``reading``), answered by a planner — the deterministic one (``deterministic``, its words in ``phrasing``) or a
configured LLM (``llm``) — from the catalog's own tools called as the caller (``toolbox``), with changes made only
when the user's own words asked for them (``guard``), and a conversation's memory between turns (``memory``)."""
