"""``agora schedules ls|show|create|pause|resume|delete|run|history``: work the hub starts on a clock."""

from __future__ import annotations

import json as jsonlib
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from .connection import Hub, hub_command
from .output import fail, table

app = typer.Typer(help="Work the hub starts on a clock: tasks, messages or workflows at each tick.", no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="The schedule's name (or id, sched_…).")]


def local_time(iso: str, zone: str) -> str:
    """A UTC time from the wire as the schedule's clock reads it: ``2026-12-07 09:00:00 CET``."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _outcome(tick: dict[str, Any] | None) -> str:
    if tick is None:
        return "no tick yet"
    return tick["outcome"] + (f" ({tick['run_status']})" if tick["run_status"] else "")


def _action_words(action: dict[str, Any]) -> str:
    if task := action.get("task"):
        target = task["assignee"] or "any agent with " + ", ".join(task["required_capabilities"])
        return f"task {task['task_type']} for {target}, payload {jsonlib.dumps(task['payload'])}"
    if message := action.get("message"):
        to = f"topic {message['topic']}" if message.get("topic") else message["to_agent"]
        return f"message to {to}: {jsonlib.dumps(message['content'])}"
    workflow = action["workflow"]
    version = f" v{workflow['version']}" if workflow.get("version") else ""
    return f"workflow {workflow['workflow_name']}{version}, input {jsonlib.dumps(workflow['input'])}"


def _status(s: dict[str, Any]) -> str:
    """``paused (paused: why)``; ``paused`` when the reason says no more."""
    return s["status"] + (f" ({s['status_reason']})" if s["status_reason"] not in (None, s["status"]) else "")


def _said(s: dict[str, Any]) -> None:
    """``name: active, next run …`` or ``name: paused (paused: why)``, and the hub's warnings on stderr."""
    if s["next_runs"]:
        typer.echo(f"{s['name']}: {s['status']}, next run {local_time(s['next_runs'][0], s['timezone'])}")
    else:
        typer.echo(f"{s['name']}: {_status(s)}")
    for warning in s.get("warnings") or []:
        typer.echo(f"warning: {warning}", err=True)


@hub_command(app, "ls")
def ls(
    hub: Hub,
    status: Annotated[str | None, typer.Option(help="active, paused, ended or stopped.")] = None,
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """List schedules by name."""
    result = hub.call("agora.schedules.list", status=status, limit=limit)
    rows = [
        [s["name"], s["trigger"], s["timezone"], s["status"], local_time(s["next_runs"][0], s["timezone"]) if s["next_runs"] else "-",
         s["runs"], _outcome(s["last_tick"])]
        for s in result["schedules"]
    ]  # fmt: skip
    more = " (more: use --limit)" if result["next_cursor"] else ""
    columns = ["name", "trigger", "timezone", "status", "next run", "runs", "last outcome"]
    hub.show(result, lambda r: table(f"{len(r['schedules'])} schedule(s){more}", columns, rows))


@hub_command(app, "show")
def show(hub: Hub, name: Name) -> None:
    """Show a schedule: its trigger in words, action, policies, status and next runs."""
    found = hub.call("agora.schedules.get", schedule=name)

    def human(s: dict[str, Any]) -> None:
        policies = f"overlap {s['overlap']}, missed {s['missed']} (catch-up max {s['catch_up_max']}), jitter {s['jitter_seconds']:g}s"
        window = ", ".join(f"{label} {s[key]}" for label, key in (("from", "start_at"), ("until", "end_at"), ("at most", "max_runs")) if s[key] is not None)
        rows = [
            ["id", s["schedule_id"]], ["trigger", f"{s['trigger']} ({s['timezone']})"], ["in words", s["trigger_words"]],
            ["action", _action_words(s["action"])], ["policies", policies], ["window", window or "always"],
            ["status", _status(s)], ["runs", s["runs"]],
            ["last tick", f"{s['last_tick']['tick_at'][:19]} {_outcome(s['last_tick'])}" if s["last_tick"] else "none yet"],
            ["description", s["description"]], ["created", f"{s['created_at'][:19]} by {s['created_by']}"],
        ]  # fmt: skip
        table(s["name"], ["field", "value"], rows)
        if s["next_runs"]:
            table("next runs", [s["timezone"], "UTC"], [[local_time(t, s["timezone"]), t] for t in s["next_runs"]])
        else:
            typer.echo(f"no next run: it is {s['status']}")

    hub.show(found, human)


def _json(text: str | None, option: str) -> dict[str, Any] | None:
    """An option's JSON object; None when it was not given."""
    if text is None:
        return None
    try:
        value = jsonlib.loads(text)
    except ValueError as exc:
        raise fail(f"{option} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise fail(f"{option} must be a JSON object")
    return value


def _action(
    task: str | None, capability: list[str], assignee: str | None, payload: str | None,
    message_to: str | None, topic: str | None, content: str | None, workflow: str | None, input_: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The one action --task, --message-to, --topic or --workflow names, with only the options that go with it."""
    kinds = {"--task": task, "--message-to": message_to, "--topic": topic, "--workflow": workflow}
    given = [option for option, value in kinds.items() if value is not None]
    if len(given) != 1:
        raise fail(f"give exactly one of --task, --message-to, --topic and --workflow (got {', '.join(given) or 'none'})")
    belongs = {"--capability": (capability, "--task"), "--assignee": (assignee, "--task"), "--payload": (payload, "--task"),
               "--input": (input_, "--workflow"), "--content": (content, "--message-to", "--topic")}  # fmt: skip
    for option, (value, *owners) in belongs.items():
        if value and given[0] not in owners:
            raise fail(f"{option} goes with {' or '.join(owners)}, not {given[0]}")
    if task is not None:
        spec = {"task_type": task, "required_capabilities": capability, "assignee": assignee, "payload": _json(payload, "--payload")}
        return {"task": {k: v for k, v in spec.items() if v is not None}}
    if workflow is not None:
        return {"workflow": {"workflow_name": workflow, **({"input": _json(input_, "--input")} if input_ else {})}}
    if content is None:
        raise fail(f"{given[0]} needs --content (JSON, or plain text)")
    try:
        body = jsonlib.loads(content)
    except ValueError:
        body = content  # plain text is a message too
    return {"message": {("to_agent" if message_to else "topic"): message_to or topic, "content": body}}


@hub_command(app, "create")
def create(
    hub: Hub,
    name: Annotated[str, typer.Argument(help="Unique in your tenant (letters, digits, _ . : -).")],
    trigger: Annotated[str, typer.Option(help="Cron ('0 9 * * 1', '@daily'), interval ('every 5m') or one time ('at 2026-12-01T09:00').")],
    timezone: Annotated[str | None, typer.Option(help="The IANA time zone the trigger reads in (default UTC).")] = None,
    task: Annotated[str | None, typer.Option(help="Each tick assigns a task of this type.")] = None,
    capability: Annotated[list[str] | None, typer.Option("--capability", "-c", help="With --task: a capability the claimer needs (repeatable).")] = None,
    assignee: Annotated[str | None, typer.Option(help="With --task: give it to this agent (id or name).")] = None,
    payload: Annotated[str | None, typer.Option(help="With --task: its input as a JSON object ({{tick}} becomes the tick's time).")] = None,
    message_to: Annotated[str | None, typer.Option("--message-to", help="Each tick sends --content to this agent (or 'broadcast').")] = None,
    topic: Annotated[str | None, typer.Option(help="Each tick publishes --content to this topic.")] = None,
    content: Annotated[str | None, typer.Option(help="The message: JSON, or plain text.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Each tick runs this saved workflow (its latest version).")] = None,
    input_: Annotated[str | None, typer.Option("--input", help="With --workflow: its input as a JSON object.")] = None,
    overlap: Annotated[str | None, typer.Option(help="While the run before goes on: skip (default), queue or allow.")] = None,
    missed: Annotated[str | None, typer.Option(help="Ticks passed while no hub ran: skip, run_once (default) or catch_up.")] = None,
    catch_up_max: Annotated[int | None, typer.Option("--catch-up-max", help="With --missed catch_up: the most missed ticks run (default 10).")] = None,
    jitter: Annotated[float | None, typer.Option(help="Each tick fires up to this many seconds later, at random.")] = None,
    start_at: Annotated[str | None, typer.Option("--start-at", help="No tick before this (ISO 8601, e.g. 2026-12-01T00:00:00Z).")] = None,
    end_at: Annotated[str | None, typer.Option("--end-at", help="No tick after this (ISO 8601): the schedule ends.")] = None,
    max_runs: Annotated[int | None, typer.Option("--max-runs", help="End after this many runs.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    description: Annotated[str | None, typer.Option(help="What it is for.")] = None,
) -> None:
    """Schedule a task, a message or a workflow run at each tick of a trigger."""
    action = _action(task, capability or [], assignee, payload, message_to, topic, content, workflow, input_)
    result = hub.call(
        "agora.schedules.create", name=name, trigger=trigger, timezone=timezone, action=action, overlap=overlap, missed=missed,
        catch_up_max=catch_up_max, jitter_seconds=jitter, start_at=start_at, end_at=end_at, max_runs=max_runs,
        paused=paused or None, description=description,
    )  # fmt: skip

    def human(s: dict[str, Any]) -> None:
        typer.echo(f"created {s['schedule_id']}: {s['trigger_words']}")
        _said(s)

    hub.show(result, human)


@hub_command(app, "pause")
def pause(hub: Hub, name: Name, note: Annotated[str | None, typer.Option(help="Why, for whoever looks at it next.")] = None) -> None:
    """Pause a schedule: no tick fires until it is resumed."""
    hub.show(hub.call("agora.schedules.pause", schedule=name, note=note), _said)


@hub_command(app, "resume")
def resume(hub: Hub, name: Name) -> None:
    """Resume a schedule: ticks from now on fire (those that passed meanwhile do not); it acts as you from now."""
    hub.show(hub.call("agora.schedules.resume", schedule=name), _said)


@hub_command(app, "delete")
def delete(hub: Hub, name: Name) -> None:
    """Delete a schedule and its history (what it started stays)."""
    hub.show(hub.call("agora.schedules.delete", schedule=name), lambda r: typer.echo(f"deleted {r['schedule_id']}"))


def _tick_words(t: dict[str, Any]) -> str:
    made = f": {t['run_kind']} {t['run_id']} ({t['run_status']})" if t["run_id"] else ""
    return t["outcome"] + made + (f": {t['reason']}" if t["reason"] else "")


@hub_command(app, "run")
def run(hub: Hub, name: Name) -> None:
    """Fire a schedule now, besides its clock (its overlap policy applies)."""
    hub.show(hub.call("agora.schedules.run_now", schedule=name), lambda r: typer.echo(_tick_words(r["tick"])))


@hub_command(app, "history")
def history(hub: Hub, name: Name, limit: Annotated[int, typer.Option(help="How many ticks to show.")] = 20) -> None:
    """A schedule's ticks, newest first: when each was due and fired, its lag, outcome and what it started."""
    result = hub.call("agora.schedules.history", schedule=name, limit=limit)
    rows = [
        [t["tick_at"][:19], t["fired_at"][:19] if t["fired_at"] else "-", f"{t['lag_seconds']:.3f}s" if t["lag_seconds"] is not None else "-",
         t["outcome"], "run now" if t["manual"] else "clock", t["run_id"], t["run_status"], t["reason"]]
        for t in result["ticks"]
    ]  # fmt: skip
    more = " (more: use --limit)" if result["next_cursor"] else ""
    columns = ["tick (UTC)", "fired", "lag", "outcome", "by", "started", "its status", "reason"]
    hub.show(result, lambda r: table(f"{len(r['ticks'])} tick(s) of {name}{more}", columns, rows))
