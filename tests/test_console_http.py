"""The console's door without a browser: sign-in, cookies, CSRF, expiry, sign-out, tenancy, headers, --no-console."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import call, new_tenant, ok, unique
from tests.hubproc import HubProcess


@pytest.fixture(scope="module")
def console_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path_factory.mktemp("hub-console"), extra_args=["--console-session-seconds", "3"]).start()
    yield hub
    hub.stop()


def browser(hub: HubProcess) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Accept": "text/html", "Sec-Fetch-Site": "same-origin"}, timeout=10)


def sign_in(client: httpx.Client, key: str, next_: str = "/ui") -> httpx.Response:
    return client.post("/ui/sign-in", data={"key": key, "next": next_})


@contextlib.contextmanager
def signed_in(hub: HubProcess, key: str) -> Iterator[httpx.Client]:
    """A console client signed in with ``key``, as a browser without scripts."""
    with browser(hub) as client:
        assert sign_in(client, key).status_code == 303
        yield client


def test_root_sends_a_browser_to_the_console_and_the_console_to_sign_in(console_hub: HubProcess) -> None:
    with browser(console_hub) as b:
        root = b.get("/")
        assert root.status_code == 303 and root.headers["location"] == "/ui"
        page = b.get("/ui/agents?q=x")
        assert page.status_code == 303 and page.headers["location"] == "/ui/sign-in?next=%2Fui%2Fagents%3Fq%3Dx"
        form = b.get("/ui/sign-in")
        assert form.status_code == 200 and 'name="key"' in form.text
        csp = form.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    api = httpx.get(console_hub.url + "/", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"


def test_sign_in_sets_a_strict_http_only_cookie_and_goes_where_it_was_asked(console_hub: HubProcess) -> None:
    with browser(console_hub) as b:
        signed = sign_in(b, console_hub.admin_key, "/ui/agents")
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/agents"
        cookies = signed.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("agora_console="))
        assert "HttpOnly" in session and "SameSite=strict" in session and "Path=/ui" in session
        assert console_hub.admin_key not in " ".join(cookies)
        assert b.get("/ui").status_code == 200
    with browser(console_hub) as b:
        assert sign_in(b, console_hub.admin_key, "//evil.example/x").headers["location"] == "/ui"


def test_a_wrong_key_is_told_in_place_and_signs_nobody_in(console_hub: HubProcess) -> None:
    with browser(console_hub) as b:
        refused = sign_in(b, "agora_sk_" + "x" * 43)
        assert refused.status_code == 401 and 'role="alert"' in refused.text and "not valid" in refused.text
        assert "agora_console" not in b.cookies
        assert b.get("/ui").status_code == 303


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(console_hub: HubProcess) -> None:
    with browser(console_hub) as b:
        sign_in(b, console_hub.admin_key)
        refused = b.post("/ui/sign-out")
        assert refused.status_code == 403
        assert b.get("/ui").status_code == 200  # still signed in
        wrong = b.post("/ui/sign-out", data={"csrf_token": "not-it"})
        assert wrong.status_code == 403
        cross_site = b.post("/ui/sign-out", data={"csrf_token": b.cookies["agora_csrf"]}, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross_site.status_code == 403
        assert b.get("/ui").status_code == 200
        assert b.post("/ui/sign-in", data={"key": console_hub.admin_key}, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403


def test_signing_out_ends_the_session_on_the_server(console_hub: HubProcess) -> None:
    with browser(console_hub) as b:
        sign_in(b, console_hub.admin_key)
        stolen = b.cookies["agora_console"]
        out = b.post("/ui/sign-out", headers={"X-CSRF-Token": b.cookies["agora_csrf"]})
        assert out.status_code == 303 and out.headers["location"] == "/ui/sign-in"
    with browser(console_hub) as replay:
        replay.cookies.set("agora_console", stolen, path="/ui")
        assert replay.get("/ui").status_code == 303


def test_a_session_expires_and_an_htmx_request_is_told_in_place(console_hub: HubProcess) -> None:
    with browser(console_hub) as b:
        sign_in(b, console_hub.admin_key)
        assert b.get("/ui").status_code == 200
        time.sleep(3.2)  # --console-session-seconds 3
        assert b.get("/ui").status_code == 303
        fragment = b.get("/ui/agents", headers={"HX-Request": "true"})
        assert fragment.status_code == 401 and "session has ended" in fragment.text


def test_revoking_the_key_ends_its_sessions(console_hub: HubProcess) -> None:
    with console_hub.client() as admin:
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=unique("tenant")))
        with browser(console_hub) as b:
            sign_in(b, created["key"])
            assert b.get("/ui").status_code == 200
            ok(call(admin, "agora.admin.keys.revoke", key_id=created["info"]["key_id"]))
            assert b.get("/ui").status_code == 303


def test_a_tenant_sees_only_its_own_agents_and_a_foreign_one_is_not_there(console_hub: HubProcess) -> None:
    with console_hub.client() as admin:
        mine, theirs = new_tenant(admin, console_hub), new_tenant(admin, console_hub)
        with mine, theirs:
            own = ok(call(mine, "agora.agents.register", agent_name=unique("own")))
            foreign = ok(call(theirs, "agora.agents.register", agent_name=unique("foreign")))
            key = mine.headers["Authorization"].removeprefix("Bearer ")
    with browser(console_hub) as b:
        sign_in(b, key)
        page = b.get("/ui/agents")
        assert own["agent_name"] in page.text and foreign["agent_name"] not in page.text
        assert b.get(f"/ui/agents/{own['agent_id']}").status_code == 200
        missing = b.get(f"/ui/agents/{foreign['agent_id']}")
        unknown = b.get("/ui/agents/agent_6b06b26c1f5b603ae077a45f")
        assert missing.status_code == unknown.status_code == 404
        assert foreign["agent_name"] not in missing.text


def test_the_live_stream_pushes_a_changed_fragment(console_hub: HubProcess) -> None:
    with console_hub.client() as admin:
        name = unique("live")
        ok(call(admin, "agora.agents.register", agent_name=name))
        with browser(console_hub) as b:
            sign_in(b, console_hub.admin_key)
            with b.stream("GET", f"/ui/live/agents?q={name}") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                assert _next_event(lines) == "agents"
                ok(call(admin, "agora.admin.override", target_id=name, action="pause", reason="test"))
                assert _next_event(lines) == "agents"


def _searches(admin: httpx.Client) -> float:
    found = re.search(r'^agora_tool_calls_total\{outcome="ok",tool="agora.messaging.search"\} (\S+)$', admin.get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


def test_tabs_of_one_key_woken_by_one_message_share_one_search(console_hub: HubProcess) -> None:
    """Five tabs (five sessions of one key) on the messages tail: a message wakes them all, and one catalog read
    serves every tab (two at the most, if the wake-up straddles a render slot); each tab still gets the message."""
    with console_hub.client() as admin, new_tenant(admin, console_hub) as customer:
        agent = ok(call(customer, "agora.agents.register", agent_name=unique("tail")))
        key = customer.headers["Authorization"].removeprefix("Bearer ")
        with contextlib.ExitStack() as tabs:
            streams = []
            for _ in range(5):
                b = tabs.enter_context(browser(console_hub))
                sign_in(b, key)
                streams.append(tabs.enter_context(b.stream("GET", "/ui/live/messages", timeout=30)).iter_lines())
            for lines in streams:
                next_fragment(lines, "messages")
            before = _searches(admin)
            ok(call(customer, "agora.messaging.send", to_agent=agent["agent_id"], content="seen by every tab"))
            for lines in streams:
                next_fragment(lines, "messages", until="seen by every tab")
            assert 1 <= _searches(admin) - before <= 2


def test_a_tail_of_one_agents_messages_is_not_woken_by_anothers(console_hub: HubProcess) -> None:
    with console_hub.client() as admin, new_tenant(admin, console_hub) as customer:
        watched, other = (ok(call(customer, "agora.agents.register", agent_name=unique(n))) for n in ("watched", "other"))
        with browser(console_hub) as b:
            sign_in(b, customer.headers["Authorization"].removeprefix("Bearer "))
            with b.stream("GET", f"/ui/live/messages?to={watched['agent_name']}", timeout=30) as stream:
                lines = stream.iter_lines()
                next_fragment(lines, "messages")
                before = _searches(admin)
                ok(call(customer, "agora.messaging.send", to_agent=other["agent_id"], content="not for this tab"))
                time.sleep(0.6)  # two render slots: a tab woken by it would have searched by now
                ok(call(customer, "agora.messaging.send", to_agent=watched["agent_id"], content="for this tab"))
                shown = next_fragment(lines, "messages", until="for this tab")
                assert "not for this tab" not in shown and _searches(admin) - before == 1
            assert "event: gone" in b.get("/ui/live/messages?to=nobody-by-this-name").text


def next_fragment(lines: Iterator[str], name: str, until: str = "") -> str:
    """The HTML of the next ``name`` event of an SSE stream (the first that contains ``until``)."""
    event, data = None, []
    for line in lines:
        if line.startswith("event: "):
            event, data = line.removeprefix("event: "), []
        elif line.startswith("data: "):
            data.append(line.removeprefix("data: "))
        elif not line and event == name and until in "\n".join(data):
            return "\n".join(data)
    raise AssertionError("the stream ended")


def _next_event(lines: Iterator[str]) -> str:
    for line in lines:
        if line.startswith("event: "):
            return line.removeprefix("event: ")
    raise AssertionError("the stream ended")


def test_no_console_means_no_pages(tmp_path: Path) -> None:
    hub = HubProcess(tmp_path / "hub", extra_args=["--no-console"]).start()
    try:
        assert httpx.get(hub.url + "/ui", follow_redirects=False).status_code == 404
        assert httpx.get(hub.url + "/", headers={"Accept": "text/html"}).status_code == 404
    finally:
        hub.stop()


def test_a_task_is_cancelled_from_its_page_and_a_refused_action_says_why_and_changes_nothing(console_hub: HubProcess) -> None:
    with console_hub.client() as admin:
        task = ok(call(admin, "agora.task.assign", task_type="console.demo", required_capabilities=["nobody-has-this"]))
        with browser(console_hub) as b:
            sign_in(b, console_hub.admin_key)
            page = b.get(f"/ui/tasks/{task['task_id']}")
            assert page.status_code == 200 and "console.demo" in page.text and "Cancel task" in page.text
            htmx = {"HX-Request": "true", "X-CSRF-Token": b.cookies["agora_csrf"]}
            done = b.post(f"/ui/tasks/{task['task_id']}/cancel", data={"reason": "not needed"}, headers=htmx)
            assert done.status_code == 200 and "Cancelled." in done.text
            assert ok(call(admin, "agora.task.get", task_id=task["task_id"]))["status"] == "cancelled"
            history = ok(call(admin, "agora.task.history", task_id=task["task_id"]))["transitions"]
            refused = b.post(f"/ui/tasks/{task['task_id']}/requeue", headers=htmx)
            assert refused.status_code == 409 and 'role="alert"' in refused.text and "cancelled" in refused.text
            assert ok(call(admin, "agora.task.history", task_id=task["task_id"]))["transitions"] == history
            assert b.post(f"/ui/tasks/{task['task_id']}/explode", headers=htmx).status_code == 404
            assert b.get("/ui/tasks?status=nonsense").status_code == 400


def test_the_dead_letter_is_requeued_in_bulk_from_the_tasks_page(console_hub: HubProcess) -> None:
    kind = unique("dlq").replace("-", ".")
    with console_hub.client() as admin:
        worker = ok(call(admin, "agora.agents.register", agent_name=unique("worker")))
        task = ok(call(admin, "agora.task.assign", task_type=kind, assignee=worker["agent_id"], max_attempts=1))
        with console_hub.client(worker["agent_token"]) as agent:
            lease = ok(call(agent, "agora.task.claim", task_types=[kind]))["lease"]
            ok(call(agent, "agora.task.update", task_id=task["task_id"], status="failed", retry=True, lease_token=lease["token"]))
        assert ok(call(admin, "agora.task.get", task_id=task["task_id"]))["status"] == "dead_letter"
        with browser(console_hub) as b:
            sign_in(b, console_hub.admin_key)
            page = b.get(f"/ui/tasks?status=dead_letter&type={kind}")
            assert "Requeue all dead-lettered" in page.text and task["task_id"] in page.text
            done = b.post("/ui/tasks/requeue-dead-letter", data={"type": kind}, headers={"X-CSRF-Token": b.cookies["agora_csrf"], "HX-Request": "true"})
            assert done.status_code == 200 and "1 task back in the queue." in done.text
        assert ok(call(admin, "agora.task.get", task_id=task["task_id"]))["status"] == "pending"
