"""A2A tasks on top of the task queue: an A2A message to agent X is a turn (an Agora task of type ``a2a.message``)
for X; X answers with ``agora.a2a.update`` (or simply finishes the turn); callers read, wait and stream from the
store, woken by the notifier (key ``a2a:<task id>``), never by polling.

Everything here speaks the A2A 1.0 JSON shapes (``{"id", "contextId", "status": {"state": "TASK_STATE_…"}, …}``);
the A2A door converts them to and from the SDK's protobuf types. State is stored lower-case (``working``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from google.protobuf.json_format import ParseDict, ParseError
from sqlalchemy import Connection

from a2a.types import a2a_pb2
from agora.bus import Event
from agora.core.context import CallContext, Hub
from agora.core.events import announce
from agora.core.ids import new_id
from agora.core.services import tasks as task_service
from agora.store import schema
from agora.store.ops import a2a as a2a_ops
from agora.store.ops import a2a_push as push_ops
from agora.store.ops import a2a_statements, inserts
from agora.store.ops import conversations as conversation_ops
from agora.store.ops import tasks as task_ops
from agora_sdk.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from agora_sdk.wire.a2a import A2AUpdate, A2AUpdated
from agora_sdk.wire.common import iso_utc

if TYPE_CHECKING:
    from agora.core.handoff import Taker
    from agora.core.wakeups import Waiter

TURN = a2a_ops.TURN
TERMINAL = frozenset(a2a_ops.FINISHED)
INTERRUPTED = frozenset({"input_required", "auth_required"})
ENDS_STREAM = TERMINAL | INTERRUPTED
RECHECK = 5.0  # seconds a waiting stream or caller trusts the notifier before it looks at the store again
REACHABLE = ("active", "busy", "error")  # an agent in another status gets its task queued; blocking sends return at once


def wire_state(state: str) -> str:
    return f"TASK_STATE_{state.upper()}"


def state_from_wire(value: str) -> str:
    return value.removeprefix("TASK_STATE_").lower()


def checked(shape: type[Any], value: dict[str, Any], field: str) -> dict[str, Any]:
    """``value`` if it parses as the A2A type ``shape`` (unknown fields refused), else 422 naming ``field``."""
    try:
        ParseDict(value, shape())
    except (ParseError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"{field} is not an A2A {shape.__name__}: {exc}", details={"field": field}) from None
    return value


# -- the A2A task document ------------------------------------------------------------------------------------------


def document(task: dict[str, Any], history_length: int | None = None, artifacts: bool = True) -> dict[str, Any]:
    """The A2A Task of a stored row (its last ``history_length`` messages when given)."""
    history = task["history"]
    if history_length is not None:
        history = history[max(0, len(history) - history_length) :] if history_length > 0 else []
    status: dict[str, Any] = {"state": wire_state(task["state"]), "timestamp": iso_utc(task["updated_at"])}
    if task["status_message"]:
        status["message"] = task["status_message"]
    doc = {"id": task["task_id"], "contextId": task["context_id"], "status": status, "history": history}
    if artifacts and task["artifacts"]:
        doc["artifacts"] = task["artifacts"]
    if task["metadata"]:
        doc["metadata"] = task["metadata"]
    return doc


def _status_event(task: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = {"state": wire_state(task["state"]), "timestamp": iso_utc(task["updated_at"])}
    if task["status_message"]:
        status["message"] = task["status_message"]
    return {"statusUpdate": {"taskId": task["task_id"], "contextId": task["context_id"], "status": status}}


def _agent_message(task: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    """An agent's message, checked and completed with its ids and role."""
    return _with_ids(task, _agent_said(message))


def _with_ids(task: dict[str, Any], said: dict[str, Any]) -> dict[str, Any]:
    """A message ``_agent_said`` made, with the task's ids."""
    return {**said, "taskId": task["task_id"], "contextId": task["context_id"]}


def _agent_said(message: dict[str, Any]) -> dict[str, Any]:
    """An agent's message, checked, with its id and role: all but the task's ids (which it gets whatever it says)."""
    said = {"messageId": new_id("msg"), **message, "role": "ROLE_AGENT"}
    if not _plain_text(said):
        checked(a2a_pb2.Message, {**said, "taskId": "", "contextId": ""}, "message")
    return said


def _plain_text(said: dict[str, Any]) -> bool:
    """An agent's message of an id, its role and text parts only (a handler's usual answer): a valid A2A Message
    without protobuf's parse of it, which is pure Python (~28 us a message). Any other shape is parsed."""
    parts = said.get("parts", [])
    return (
        said.keys() <= {"messageId", "role", "parts"} and isinstance(said["messageId"], str) and isinstance(parts, list)
        and all(isinstance(part, dict) and part.keys() == {"text"} and isinstance(part["text"], str) for part in parts)
    )  # fmt: skip


def _wake(conn: Connection, task: dict[str, Any]) -> Event:
    """Wakes the task's streams (and push deliverers, when it has webhooks), and its blocking callers once it is
    ``settled`` (they have nothing to read before)."""
    return _wake_event(task, task["has_push"] if "has_push" in task else push_ops.any_for(conn, task["task_id"]))


def _wake_event(task: dict[str, Any], push: bool) -> Event:
    data = {"task_id": task["task_id"], "push": push, "settled": task["state"] in ENDS_STREAM}
    return Event("a2a_updated", task["tenant_id"], data, local=task if data["settled"] else None)  # for ``settled``


def _move(conn: Connection, task: dict[str, Any], state: str, now: datetime, message: dict[str, Any] | None = None) -> tuple[dict[str, Any], Event]:
    """A new state (with its status message) for the task, and its status event in the stream (its seq is the
    task's ``last_seq``: the row is locked, no other event of the task can come between)."""
    changes: dict[str, Any] = {"state": state, "updated_at": now, "status_message": message}
    if message is not None:
        changes["history"] = [*task["history"], message]
    task = a2a_ops.save(conn, task, changes)
    task["last_seq"] = a2a_ops.append_event(conn, task["task_id"], _status_event(task), state in ENDS_STREAM, now)
    return task, _wake(conn, task)


# -- callers: send, read, cancel ---------------------------------------------------------------------------------------


def task_id_for(message: dict[str, Any]) -> str:
    """The id of the task ``message`` goes to: the one it continues, or a new one (``send`` takes it), known before
    the send so that a caller can arm its wake-up first."""
    return message.get("taskId") or new_id("a2a")


async def send(hub: Hub, agent: dict[str, Any], caller: str, message: dict[str, Any], new_task_id: str | None = None) -> dict[str, Any]:
    """Start a task for ``agent`` with ``message`` (its id ``new_task_id`` when given), or continue the task it names (one
    waiting for input). The task comes back with ``last_seq``, its newest event (SUBMITTED, or WORKING when the turn
    went to the agent's channel at once): a stream follows it from there. ``message`` is the caller's
    A2A Message as the SDK parsed it (its JSON form), so it is not checked again."""
    message = {**message, "role": "ROLE_USER"}
    now = hub.clock.now()
    taker = hub.handoffs.reserve(agent["agent_id"], TURN)  # the agent's runtime is here with room: hand it the turn
    handed: list[dict[str, Any]] = []

    # A turn handed to the agent's channel is claimed in this transaction, which moves the A2A task on to working, as
    # follow_turn would: it is stored so at once, its stream getting both status events.
    states = ("submitted", "working") if taker is not None else ("submitted",)

    def follow_up(conn: Connection) -> tuple[dict[str, Any], list[Event]]:
        """The task ``message`` continues, moved on with it (to the last of ``states``), and its new turn."""
        task, turn, events = _continued(conn, message["taskId"])
        for state in states:
            task["last_seq"] = a2a_ops.append_event(conn, task["task_id"], _status_event({**task, "state": state}), False, now)
        events.append(_wake(conn, task))
        if taker is not None:
            leased, more = task_service.hand_off(conn, turn, taker, now, a2a_moved=True)
            handed[:] = [leased]
            events += more
        return task, events

    def _continued(conn: Connection, task_id: str) -> tuple[dict[str, Any], dict[str, Any], list[Event]]:
        """The task stored (in its last state of ``states``) with the follow-up, and the turn that carries it."""
        task = _own(conn, agent, caller, task_id, lock=True)
        if task["state"] in TERMINAL:
            raise FailedPrecondition(
                f"task {task_id} is {task['state']}; a finished task takes no more messages",
                details={"reason": "a2a_task_terminal", "task_id": task_id, "state": task["state"]},
            )
        if task["state"] not in INTERRUPTED:
            raise Conflict(
                f"task {task_id} is {task['state']}; it takes a follow-up once it asks for input",
                details={"reason": "a2a_task_busy", "task_id": task_id, "state": task["state"]},
            )
        if message.get("contextId") not in (None, task["context_id"]):
            raise InvalidArgument("contextId differs from the task's own", details={"field": "message.contextId"})
        followed = {**message, "contextId": task["context_id"]}  # a follow-up with only taskId inherits it
        turn, _created, events = _turn(conn, agent, task, followed, now, taker is not None)
        changes = {"history": [*task["history"], followed], "turn_task_id": turn["task_id"], "state": states[-1], "status_message": None, "updated_at": now}
        return a2a_ops.save(conn, task, changes), turn, events

    try:
        if message.get("taskId"):
            task, events = await hub.store.write(follow_up)
        else:
            task, events, handed[:] = await _start_at_once(hub, agent, caller, message, new_task_id, taker, now)
    except BaseException:
        if taker is not None:
            taker.unreserve()
        raise
    await announce(hub, events)
    if taker is not None:
        taker.hand(task_service.claim_of(handed[0]))
    return task


def _turn(
    conn: Connection, agent: dict[str, Any], task: dict[str, Any], message: dict[str, Any], now: datetime, handed: bool
) -> tuple[dict[str, Any], bool, list[Event]]:
    """The Agora task through which the agent gets this message (and the history before it); ``handed``: it is
    leased to the agent in this transaction, once the A2A task is stored."""
    row = _turn_row(agent, task, message, now)
    return task_service.create_in(conn, row, task["caller"], now, handed_to=agent["agent_id"] if handed else None)


def _turn_row(agent: dict[str, Any], task: dict[str, Any], message: dict[str, Any], now: datetime) -> dict[str, Any]:
    payload = {"a2a_task_id": task["task_id"], "context_id": task["context_id"], "message": message, "history": task["history"]}
    return task_service.new_task_row(
        agent["tenant_id"], TURN, payload, task["caller"], now, assignee=agent["agent_id"], max_attempts=3, conversation_id=task["context_id"]
    )


def _new_task(agent: dict[str, Any], caller: str, message: dict[str, Any], task_id: str | None, state: str, now: datetime) -> dict[str, Any]:
    """The row of a task ``message`` starts (in ``state``), its turn not known yet."""
    context_id = message.get("contextId") or new_id("ctx")
    task_id = task_id or new_id("a2a")
    return {
        "task_id": task_id, "tenant_id": agent["tenant_id"], "agent_id": agent["agent_id"], "caller": caller,
        "context_id": context_id, "state": state, "status_message": None,
        "history": [{**message, "contextId": context_id, "taskId": task_id}], "artifacts": [], "metadata": message.get("metadata") or {},
        "message_only": False, "turn_task_id": "", "created_at": now, "updated_at": now,
    }  # fmt: skip


async def _start_at_once(
    hub: Hub, agent: dict[str, Any], caller: str, message: dict[str, Any], task_id: str | None, taker: Taker | None, now: datetime
) -> tuple[dict[str, Any], list[Event], list[dict[str, Any]]]:
    """A message that starts a task: what ``send``'s transaction writes (the task, its turn, leased to ``taker``'s
    agent if given, their history and events), made here and written with nothing read first
    (``inserts.insert_all``): on PostgreSQL one statement, not a transaction of eight round trips; on SQLite one
    INSERT a table, not the reads and writes of the general path on the one writer thread. The task, the events to
    announce, and the turn as leased (none if not handed)."""
    states = ("submitted", "working") if taker is not None else ("submitted",)
    task = _new_task(agent, caller, message, task_id, states[-1], now)
    turn = _turn_row(agent, task, task["history"][0], now)
    task["turn_task_id"] = turn["task_id"]
    history = [task_ops.history_row(turn["task_id"], caller, None, "pending", now, None)]
    transitions = [{**turn, "from_status": None, "claimed_by": taker.agent_id if taker else None}]
    if taker is not None:
        expires = now + timedelta(seconds=taker.lease_seconds)
        leased = {**turn, **task_ops.moved_to("in_progress", now, task_ops.lease_values(turn, taker.agent_id, task_ops.lease_token(), expires, now))}
        history.append(task_ops.history_row(turn["task_id"], taker.agent_id, "pending", "in_progress", now, task_ops.attempt_note(turn)))
        transitions.append({**leased, "from_status": "pending", "a2a_moved": True})
        turn = leased
    made = [task_service.transition_event(t, now) for t in transitions]
    moves = [{"task_id": task["task_id"], "body": _status_event({**task, "state": s}), "final": False, "created_at": now} for s in states]
    tables = [(schema.tasks, [turn]), (schema.task_history, history), (schema.a2a_tasks, [task]), (schema.a2a_events, moves)]
    tables += conversation_ops.turn_rows(*conversation_ops.of_task(turn))
    seqs = await hub.store.write_statement(inserts.insert_all, tables, [row for row, _ in made], schema.a2a_events)
    task = {**task, "has_push": False, "last_seq": seqs[-1]}
    events = [made[0][1], _wake_event(task, False), *(event for _, event in made[1:])]
    return task, events, [turn] if taker is not None else []


def _own(conn: Connection, agent: dict[str, Any], caller: str | None, task_id: str, **how: bool) -> dict[str, Any]:
    """The task, if it is this agent's and (unless ``caller`` is None: any caller) this caller's; 404 otherwise.
    ``how``: ``lock`` or ``last_seq``, as for ``a2a_ops.get``."""
    try:
        task = a2a_ops.get(conn, task_id, **how)
    except NotFound:
        task = None
    if task is None or task["agent_id"] != agent["agent_id"] or caller not in (None, task["caller"]):
        raise NotFound(f"no task '{task_id}'", details={"reason": "a2a_task_not_found", "task_id": task_id})
    return task


async def get(hub: Hub, agent: dict[str, Any], caller: str | None, task_id: str) -> dict[str, Any]:
    return await hub.store.read(_own, agent, caller, task_id)


async def cancel(hub: Hub, agent: dict[str, Any], caller: str | None, task_id: str) -> dict[str, Any]:
    now = hub.clock.now()

    def op(conn: Connection) -> tuple[dict[str, Any], list[Event]]:
        task = _own(conn, agent, caller, task_id, lock=True)
        if task["state"] in TERMINAL:
            raise FailedPrecondition(
                f"task {task_id} is already {task['state']}", details={"reason": "a2a_task_not_cancelable", "state": task["state"]}
            )
        turn = task_ops.get(conn, task["turn_task_id"], None)
        if turn["status"] in task_ops.UNFINISHED:  # the turn's cancellation is followed into the A2A task
            moved = task_ops.cancel(conn, turn["task_id"], None, caller or "a2a", "canceled by the A2A caller", now)
            events = task_service.record_transitions(conn, [moved], now)
            return a2a_ops.get(conn, task_id), events
        task, woken = _move(conn, task, "canceled", now)
        return task, [woken]

    task, events = await hub.store.write(op)
    await announce(hub, events)
    return task


async def list_tasks(hub: Hub, agent: dict[str, Any], caller: str | None, **filters: Any) -> tuple[list[dict[str, Any]], int]:
    return await hub.store.read(lambda conn: a2a_ops.list_tasks(conn, agent["agent_id"], caller, **filters))


async def events(hub: Hub, task_id: str, after: int = 0) -> AsyncIterator[dict[str, Any]]:
    """The task's events after ``after`` as they are recorded (woken by the notifier; a wake-up lost between replicas
    only delays one by up to RECHECK seconds), until the caller stops."""
    while True:
        with hub.wakeups.armed([f"a2a:{task_id}"]) as woken:
            batch = await hub.store.read(a2a_ops.events_after, task_id, after)
            for row in batch:
                after = row["seq"]
                yield row
            if not batch:
                if hub.wakeups.draining:
                    return  # the hub is stopping: the client resubscribes
                await woken.wait(RECHECK)


def settled_keys(task_id: str) -> list[str]:
    """The wake-up keys of the task's blocking callers."""
    return [f"a2a-settled:{task_id}"]


async def settled(hub: Hub, task_id: str, timeout: float, sent: tuple[dict[str, Any], Waiter] | None = None) -> dict[str, Any]:
    """The task once it ends a stream (terminal, interrupted or answered by a message), or as it is at ``timeout``.
    ``sent``: the task as its send stored it, and a waiter armed (``settled_keys``) before that send: the first look
    needs no read. Nor does the last when the task settled on this replica: the wake-up carries it."""
    deadline = time.monotonic() + timeout
    [key] = settled_keys(task_id)
    while True:
        with contextlib.ExitStack() as armed:
            if sent is not None:
                (task, woken), sent = sent, None
            else:
                woken = armed.enter_context(hub.wakeups.armed(settled_keys(task_id)))
                task = await hub.store.read(a2a_ops.get, task_id)
            remaining = hub.wakeups.remaining(deadline)
            if task["state"] in ENDS_STREAM or remaining <= 0:
                return task
            await woken.wait(min(remaining, RECHECK))
            if key in woken.carried:
                return woken.carried[key]  # type: ignore[no-any-return]


async def snapshot(hub: Hub, agent: dict[str, Any], caller: str | None, task_id: str) -> tuple[dict[str, Any], int]:
    """The task and the position of its last event, as of one instant: a stream shows the task, then what came after.
    (Read apart, a task read just before it completed with a position read just after would wait for events that
    are already past.)"""
    task = await hub.store.read(lambda conn: _own(conn, agent, caller, task_id, last_seq=True))
    return task, task.pop("last_seq")


# -- the agent's side: agora.a2a.update, and turns finished without it --------------------------------------------------


async def update(ctx: CallContext, req: A2AUpdate) -> A2AUpdated:
    p = ctx.principal
    now = ctx.clock.now()
    if _ends_at_once(ctx, req):
        done = await _end_at_once(ctx, req, now)
        if done is not None:
            return done

    # The agent's message is checked before the transaction, not on the store's writer while it holds the write.
    said = _agent_said(req.message) if req.message is not None and (req.reply or req.state is not None) else None

    def op(conn: Connection) -> tuple[dict[str, Any], bool, list[Event]]:
        turn = task_ops.leased(conn, req.task_id, p.tenant_scope(), p.agent_id, req.lease_token)
        task = a2a_ops.for_turn(conn, req.task_id)
        if task is None:
            raise InvalidArgument(f"task {req.task_id} is not an A2A turn (type {turn['task_type']})", details={"field": "task_id"})
        if task["state"] in ENDS_STREAM:
            raise Conflict(f"the A2A task is already {task['state']}", details={"state": task["state"]})
        woken: list[Event] = []
        if req.metadata:
            task = a2a_ops.save(conn, task, {"metadata": {**task["metadata"], **req.metadata}})
        if req.reply:
            assert said is not None  # (a reply has a message: A2AUpdate)
            return _reply(conn, turn, task, _with_ids(task, said), now)
        if req.artifact is not None:
            artifact = checked(a2a_pb2.Artifact, {"artifactId": new_id("art"), **req.artifact}, "artifact")
            task = _add_artifact(conn, task, artifact, req.append, req.last_chunk, now)
            woken.append(_wake(conn, task))
        final = False
        if req.state is not None:
            message = _with_ids(task, said) if said is not None else None
            task, wake = _move(conn, task, req.state.value, now, message)
            woken.append(wake)
            final = req.state.value in ENDS_STREAM
            if final:
                woken += _end_turn(conn, turn, req.state.value, message, now)
        return task, final, woken

    task, final, events = await ctx.store.write(op)
    await announce(ctx.hub, events)
    return A2AUpdated(a2a_task_id=task["task_id"], state=task["state"], final=final)


_ENDED_AT_ONCE = ENDS_STREAM - {"failed", "canceled"}  # a turn failed or cancelled moves otherwise (``_end_turn``)
_ENDS = tuple(sorted(ENDS_STREAM))


def _ends_at_once(ctx: CallContext, req: A2AUpdate) -> bool:
    """The turn's holder ending it with a state and nothing else (how a handler's answer ends a turn): ``_end_at_once``
    can make it."""
    return (
        ctx.principal.agent_id is not None and req.lease_token is not None
        and req.state is not None and req.state.value in _ENDED_AT_ONCE
        and req.artifact is None and req.metadata is None and not req.reply
    )  # fmt: skip


async def _end_at_once(ctx: CallContext, req: A2AUpdate, now: datetime) -> A2AUpdated | None:
    """``update``'s transaction for an ``_ends_at_once`` update, as one statement on PostgreSQL and a few plain ones on
    SQLite (``a2a_statements.end_turn``); None when it changed nothing (the task had ended its stream, the lease is not
    the caller's, there is no such turn): the transaction then makes the update or says why not."""
    p = ctx.principal
    assert p.agent_id is not None and req.state is not None and req.lease_token is not None
    state = req.state.value
    said = _agent_said(req.message) if req.message is not None else None
    ended = await ctx.store.write_statement(
        a2a_statements.end_turn, req.task_id, p.tenant_id, p.agent_id, req.lease_token, _ENDS, state, wire_state(state), said,
        _turn_notes(state), now, iso_utc(now),
    )  # fmt: skip
    if ended is None:
        return None
    task, turn = ended
    completed = {**turn, "from_status": "in_progress", "a2a_moved": True}
    await announce(ctx.hub, [_wake_event(task, task["has_push"]), task_service.transition_event(completed, now)[1]])
    return A2AUpdated(a2a_task_id=task["task_id"], state=state, final=True)


def _reply(conn: Connection, turn: dict[str, Any], task: dict[str, Any], message: dict[str, Any], now: datetime) -> tuple[dict[str, Any], bool, list[Event]]:
    """The agent answers with a message and no task: it ends the stream, and the task is not listed."""
    changes = {"state": "completed", "status_message": message, "history": [*task["history"], message], "updated_at": now}
    task = a2a_ops.save(conn, task, {**changes, "message_only": len(task["history"]) == 1})
    a2a_ops.append_event(conn, task["task_id"], {"message": message}, True, now)
    return task, True, [_wake(conn, task), *_end_turn(conn, turn, "completed", message, now)]


def _add_artifact(conn: Connection, task: dict[str, Any], artifact: dict[str, Any], append: bool, last_chunk: bool, now: datetime) -> dict[str, Any]:
    task = a2a_ops.save(conn, task, {"artifacts": merged(task["artifacts"], artifact, append), "updated_at": now})
    body = {"taskId": task["task_id"], "contextId": task["context_id"], "artifact": artifact, "append": append, "lastChunk": last_chunk}
    a2a_ops.append_event(conn, task["task_id"], {"artifactUpdate": body}, False, now)
    return task


def emitted(conn: Connection, turn: dict[str, Any], chunks: list[dict[str, Any]], now: datetime) -> list[Event]:
    """What a turn's holder emitted (agora.task.emit) streamed to the A2A task's callers as it comes: one artifact,
    ``output``, made by the first chunks and extended (``append``) by the next, a part per chunk (text, or data)."""
    task = a2a_ops.for_turn(conn, turn["task_id"]) if chunks else None
    if task is None or task["state"] in ENDS_STREAM:
        return []
    artifact_id = f"output-{turn['task_id']}"
    parts = [{"text": c["text"]} if "text" in c else {"data": c["data"]} for c in chunks]
    extends = any(a["artifactId"] == artifact_id for a in task["artifacts"])
    task = _add_artifact(conn, task, {"artifactId": artifact_id, "name": "output", "parts": parts}, extends, False, now)
    return [_wake(conn, task)]


def merged(artifacts: list[dict[str, Any]], artifact: dict[str, Any], append: bool) -> list[dict[str, Any]]:
    """The artifacts with ``artifact`` added, or replacing (extending, with ``append``) the one of the same id."""
    artifacts = list(artifacts)
    same = next((i for i, a in enumerate(artifacts) if a["artifactId"] == artifact["artifactId"]), None)
    if same is None:
        artifacts.append(artifact)
    elif append:
        artifacts[same] = {**artifacts[same], "parts": [*artifacts[same]["parts"], *artifact.get("parts", [])]}
    else:
        artifacts[same] = artifact
    return artifacts


def _turn_notes(state: str) -> str:
    """The notes of a turn completed because its A2A task reached ``state``."""
    return f"A2A {state}"


def _end_turn(conn: Connection, turn: dict[str, Any], state: str, message: dict[str, Any] | None, now: datetime) -> list[Event]:
    """Finish the turn's Agora task to match the A2A state (a task waiting for input has done this turn's work).
    ``turn`` is the task as ``leased`` read and locked it in this transaction."""
    text = " ".join(p.get("text", "") for p in (message or {}).get("parts", [])).strip() or state
    if state == "failed":
        changes = {"status": "failed", "notes": text, "lease_token": turn["lease_token"]}
        moved = task_ops.update_task(conn, turn["task_id"], None, turn["claimed_by"], turn["claimed_by"], changes, now, locked=turn)
    elif state == "canceled":
        moved = task_ops.cancel(conn, turn["task_id"], None, turn["claimed_by"], text, now)
    else:
        changes = {"status": "completed", "notes": _turn_notes(state), "lease_token": turn["lease_token"]}
        moved = task_ops.update_task(conn, turn["task_id"], None, turn["claimed_by"], turn["claimed_by"], changes, now, locked=turn)
    return task_service.record_transitions(conn, [{**moved, "a2a_moved": True}], now)


_FOLLOWED = {"in_progress", "completed", "failed", "dead_letter", "cancelled"}  # the turn statuses the A2A task follows


def follow_turn(conn: Connection, turn: dict[str, Any], now: datetime) -> list[Event]:
    """A turn moved without ``agora.a2a.update`` saying so (claimed, finished by a plain task handler, failed,
    expired, cancelled): the A2A task follows. A state the agent already set is left alone."""
    status = turn["status"]
    if status not in _FOLLOWED or turn.get("a2a_moved"):  # a new turn, a retry's wait; or the A2A side moved it
        return []
    task = a2a_ops.for_turn(conn, turn["task_id"])
    if task is None or task["state"] in ENDS_STREAM:
        return []
    if status == "in_progress" and task["state"] == "submitted":
        task, woken = _move(conn, task, "working", now)
        return [woken]
    if status == "completed":
        events = []
        if turn.get("result") is not None:
            task = _result_artifact(conn, task, turn["result"], now)
            events.append(_wake(conn, task))
        task, woken = _move(conn, task, "completed", now)
        return [*events, woken]
    if status in ("failed", "dead_letter", "cancelled"):
        why = turn.get("last_error") or status
        message = _agent_message(task, {"parts": [{"text": why}]}) if status != "cancelled" else None
        task, woken = _move(conn, task, "canceled" if status == "cancelled" else "failed", now, message)
        return [woken]
    return []


def _result_artifact(conn: Connection, task: dict[str, Any], result: Any, now: datetime) -> dict[str, Any]:
    """A plain task handler's return value as the task's artifact (text for a string, data otherwise)."""
    part = {"text": result} if isinstance(result, str) else {"data": result if isinstance(result, dict) else {"result": result}}
    artifact = {"artifactId": new_id("art"), "name": "result", "parts": [part]}
    task = a2a_ops.save(conn, task, {"artifacts": [*task["artifacts"], artifact], "updated_at": now})
    body = {"taskId": task["task_id"], "contextId": task["context_id"], "artifact": artifact, "append": False, "lastChunk": True}
    a2a_ops.append_event(conn, task["task_id"], {"artifactUpdate": body}, False, now)
    return task


task_service.follow(follow_turn, task_types=[TURN])
