"""``agora schedules …`` through the installed console script against a real hub whose intervals may be 1 s."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import call, ok, unique, until
from .hubproc import HubProcess
from .test_cli import agora, agora_json


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub-schedules"), env={"AGORA_SCHEDULE_MIN_INTERVAL": "1"}).start()
    yield hub
    hub.stop()


def ticks(hub: HubProcess, schedule: str) -> list[dict[str, Any]]:
    with hub.client() as api:
        return ok(call(api, "agora.schedules.history", schedule=schedule))["ticks"]  # type: ignore[no-any-return]


def test_create_list_show_pause_run_resume_history_delete(hub: HubProcess) -> None:
    agent, beat, weekly = unique("sched"), unique("beat"), unique("weekly")
    with hub.client() as api:
        ok(call(api, "agora.agents.register", agent_name=agent))
    made = agora(hub, "schedules", "create", beat, "--trigger", "every 1s", "--message-to", agent, "--content", '{"at": "{{tick}}", "n": "{{run}}"}')
    assert made.returncode == 0, made.stderr
    assert re.fullmatch(rf"created sched_\w+: Every 1 second\n{beat}: active, next run \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n", made.stdout)
    made = agora(
        hub, "schedules", "create", weekly, "--trigger", "0 9 * * 1", "--timezone", "Europe/Berlin", "--task", "report", "-c", "summarize",
        "--payload", '{"week_of": "{{tick}}"}', "--overlap", "allow", "--max-runs", "3", "--description", "weekly report",
    )  # fmt: skip
    assert made.returncode == 0 and "At 09:00 AM, only on Monday" in made.stdout, made.stderr
    assert "warning: no active agent has summarize yet" in made.stderr

    listed = agora(hub, "schedules", "ls").stdout
    row = next(line for line in listed.splitlines() if weekly in line)
    assert re.search(r"0 9 \* \* 1 +│ Europe/Berlin +│ active +│ \d{4}-\d\d-\d\d 09:00:00 CES?T +│ 0 +│ no tick yet", row), listed
    assert re.search(rf"{beat} +│ every 1s +│ UTC +│ active +│ .+ UTC +│ \d+ +│ fired \(sent\)", listed), listed
    shown = agora(hub, "schedules", "show", weekly).stdout
    assert "At 09:00 AM, only on Monday (Europe/Berlin)" in shown and "weekly report" in shown
    assert "task report for any agent with summarize" in shown and "overlap allow" in shown and "at most 3" in shown
    assert len(re.findall(r"\d{4}-\d\d-\d\d 09:00:00 CES?T", shown)) == 3  # the next runs: max_runs leaves three

    clock = until(lambda: [t for t in ticks(hub, beat) if t["outcome"] == "fired"][:2], "the 1 s schedule did not fire twice", 10)
    assert {(t["manual"], t["run_kind"], t["run_status"]) for t in clock} == {(False, "message", "sent")}
    with hub.client() as api:
        inbox = ok(call(api, "agora.messaging.search", to_agent=agent))["messages"]
    assert {m["message_id"] for m in inbox} >= {t["run_id"] for t in clock}
    assert {m["content"]["at"] for m in inbox} >= {t["tick_at"] for t in clock} and "1" in {m["content"]["n"] for m in inbox}  # filled in

    paused = agora(hub, "schedules", "pause", beat, "--note", "maintenance")
    assert paused.stdout == f"{beat}: paused (paused: maintenance)\n", paused.stderr
    ran = agora(hub, "schedules", "run", weekly)
    fired = re.fullmatch(r"fired: task (task_\w+) \(pending\)\n", ran.stdout)
    assert fired, ran.stdout + ran.stderr
    only_paused = agora_json(hub, "schedules", "ls", "--status", "paused")
    assert [(s["name"], s["status_reason"], s["next_runs"]) for s in only_paused["schedules"]] == [(beat, "paused: maintenance", [])]
    history = agora(hub, "schedules", "history", weekly, "--limit", "5").stdout
    assert "1 tick(s) of" in history and re.search(rf"fired +│ run now +│ {fired[1]} +│ pending", history), history

    resumed = agora(hub, "schedules", "resume", beat)
    assert resumed.stdout.startswith(f"{beat}: active, next run "), resumed.stderr
    gone = agora(hub, "schedules", "delete", weekly)
    assert re.fullmatch(r"deleted sched_\w+\n", gone.stdout), gone.stderr
    with hub.client() as api:
        assert call(api, "agora.schedules.get", schedule=weekly).status_code == 404
        assert ok(call(api, "agora.task.get", task_id=fired[1]))["status"] == "pending"  # what it started stays


def test_bad_input_is_one_line_naming_what_is_wrong(hub: HubProcess) -> None:
    name = unique("bad")
    cases = [
        (["--trigger", "61 * * * *", "--topic", "reports", "--content", "hi"], "invalid_argument: trigger '61 * * * *': bad minute"),
        (["--trigger", "every 1s", "--topic", "t", "--content", "x", "--assignee", "a"], "--assignee goes with --task, not --topic"),
    ]
    done = [agora(hub, "schedules", "create", name, *args) for args, _ in cases]
    for (_, text), result in zip(cases, done, strict=True):
        assert (result.returncode, text in result.stderr, "Traceback" in result.stderr) == (2, True, False), result.stderr
    assert '{"field": "trigger"}' in done[0].stderr  # the details, on their own line
    with hub.client() as api:
        assert name not in {s["name"] for s in ok(call(api, "agora.schedules.list"))["schedules"]}
