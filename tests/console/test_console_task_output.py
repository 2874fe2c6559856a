"""A task's output (agora.task.emit) on the console's task page: shown in order, live while the task runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from ..conftest import call, ok, unique
from ..hubproc import HubProcess
from .test_console_pages import LIVE, sign_in

Screenshot = Callable[[Page, str], tuple[Path, Path]]


def test_a_running_task_s_output_shows_live_and_stays_after_it_completes(page: Page, sqlite_hub: HubProcess, screenshot: Screenshot) -> None:
    kind = unique("answer").replace("-", ".")
    with sqlite_hub.client() as admin:
        worker = ok(call(admin, "agora.agents.register", agent_name=unique("writer"), capabilities=["writing"]))
        task = ok(call(admin, "agora.task.assign", task_type=kind, assignee=worker["agent_id"], payload={"question": "Why is the sky blue?"}))
    task_id = task["task_id"]
    with sqlite_hub.client(worker["agent_token"]) as agent:
        lease = ok(call(agent, "agora.task.claim", task_types=[kind]))["lease"]["token"]

        def emit(*chunks: dict[str, object]) -> None:
            ok(call(agent, "agora.task.emit", task_id=task_id, lease_token=lease, chunks=list(chunks)))

        sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/tasks/{task_id}")
        live = page.locator("[data-live=task]")
        expect(live).to_contain_text("in_progress")
        expect(live.get_by_role("heading", name="Output")).to_be_visible()
        expect(live).to_contain_text("No output yet.")
        page.evaluate("window.notReloaded = true")

        emit({"text": "Sunlight is scattered "}, {"text": "by the air's molecules"})
        output = live.get_by_label("Output")
        expect(output).to_have_text("Sunlight is scattered by the air's molecules", timeout=LIVE)  # text chunks joined
        expect(live).not_to_contain_text("No output yet.")

        emit({"data": {"tokens": 42, "model": "demo"}}, {"text": "; blue light, with its shorter wavelength,\nmost of all."})
        expect(output).to_contain_text('{"tokens":42,"model":"demo"}', timeout=LIVE)  # compact JSON on a line of its own
        expect(output).to_contain_text("blue light, with its shorter wavelength,\nmost of all.", timeout=LIVE)
        lines = output.inner_text().splitlines()
        assert lines == [
            "Sunlight is scattered by the air's molecules",
            '{"tokens":42,"model":"demo"}',
            "; blue light, with its shorter wavelength,",
            "most of all.",
        ]
        assert page.evaluate("window.notReloaded") is True
        screenshot(page, "task-output")

        ok(call(agent, "agora.task.update", task_id=task_id, status="completed", lease_token=lease, result={"answer": "Rayleigh scattering"}))
        expect(live.locator(".state").first).to_have_text("completed", timeout=LIVE)
        expect(output).to_contain_text("most of all.")  # the output stays once the task has ended
        expect(live).to_contain_text("Rayleigh scattering")
        assert page.evaluate("window.notReloaded") is True


def test_a_long_output_shows_its_end_and_says_what_was_not_kept(page: Page, sqlite_hub: HubProcess) -> None:
    """Past the hub's bound (10,000 chunks by default) an overflow chunk counts the rest; the page shows only the last
    1,000 chunks (the overflow chunk the last of them), says that earlier ones are left out, and shows the overflow as a
    notice."""
    kind = unique("long").replace("-", ".")
    with sqlite_hub.client() as admin:
        worker = ok(call(admin, "agora.agents.register", agent_name=unique("talker")))
        task_id = ok(call(admin, "agora.task.assign", task_type=kind, assignee=worker["agent_id"]))["task_id"]
    with sqlite_hub.client(worker["agent_token"]) as agent:
        lease = ok(call(agent, "agora.task.claim", task_types=[kind], lease_seconds=600))["lease"]["token"]
        for start in range(1, 10_001, 500):
            chunks = [{"text": f"line {n}\n"} for n in range(start, start + 500)]
            ok(call(agent, "agora.task.emit", task_id=task_id, lease_token=lease, chunks=chunks))
        done = ok(call(agent, "agora.task.emit", task_id=task_id, lease_token=lease, chunks=[{"text": "x" * 1000}] * 3))
        assert done["overflowed"] == 3

        sign_in(page, sqlite_hub, sqlite_hub.admin_key, f"/ui/tasks/{task_id}")
        live = page.locator("[data-live=task]")
        output = live.get_by_label("Output")
        expect(output).to_contain_text("line 10000")
        lines = output.inner_text().splitlines()
        assert len(lines) == 999 and lines[-1] == "line 10000"
        first = int(lines[0].removeprefix("line "))
        assert lines == [f"line {n}" for n in range(first, 10_001)]
        expect(live).to_contain_text(f"{first - 1:,} earlier chunks are not shown")
        expect(live.locator(".banner")).to_have_text(re.compile(r"… 3 more chunks \(3 KB\) not kept"))
