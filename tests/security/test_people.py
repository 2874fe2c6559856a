"""People, not only keys (issue 57): a person invited with a role signs up once through a one-time link, signs in with
their password (and a TOTP second factor when they set one), acts in the console with exactly their role in the tenant
they chose, is named in the audit log, and loses their sessions at once when their role shrinks or they are removed —
on every replica. Brute force is braked; a tenant's admin manages only its own people."""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
from sqlalchemy import create_engine

from agora.core.accounts import hash_password, token_hash
from agora.store import migrate
from agora.store.ops import users as user_ops

from ..conftest import call, expect_error, ok, unique
from ..hubproc import HubProcess

PASSWORD = "correct horse battery staple"


def browser(hub: HubProcess) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Accept": "text/html", "Sec-Fetch-Site": "same-origin"}, timeout=30)


def invite(admin: httpx.Client, email: str, role: str, tenant: str) -> dict:
    made = ok(call(admin, "agora.users.create", email=email, role=role, tenant=tenant))
    assert made["signup_path"].startswith("/ui/sign-up?token=") and made["tenant_id"]
    return made


@contextlib.contextmanager
def sign_up(hub: HubProcess, made: dict, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """Follow the invitation's link as a browser would; the client is signed in afterwards."""
    with browser(hub) as client:
        form = client.get(made["signup_path"])
        assert form.status_code == 200 and made["user"]["email"] in form.text
        token = made["signup_path"].split("token=")[1]
        done = client.post("/ui/sign-up", data={"token": token, "password": password, "again": password})
        assert done.status_code == 303 and done.headers["location"] == "/ui/account", done.text
        yield client


def sign_in(hub: HubProcess, email: str, password: str = PASSWORD, code: str = "") -> httpx.Response:
    with browser(hub) as client:
        return client.post("/ui/sign-in", data={"email": email, "password": password, "code": code, "next": "/ui/account"})


def acting_as(client: httpx.Client) -> str:
    """What the console's header says of the signed-in person: email · role · tenant."""
    page = client.get("/ui/account")
    assert page.status_code == 200, page.text
    return re.search(r'title="Signed in as">([^<]*)<', page.text).group(1)  # type: ignore[union-attr]


def csrf(client: httpx.Client) -> str:
    return next(value for name, value in client.cookies.items() if "csrf" in name)


def test_an_invited_person_signs_up_once_and_acts_with_their_role(hub: HubProcess, admin: httpx.Client) -> None:
    tenant, email = unique("team"), f"{unique('alice')}@example.com"
    made = invite(admin, email, "viewer", tenant)
    token = made["signup_path"].split("token=")[1]
    with browser(hub) as stranger:  # a short password is refused, and the link still works afterwards
        refused = stranger.post("/ui/sign-up", data={"token": token, "password": "short", "again": "short"})
        assert refused.status_code == 400 and "12 to 256 characters" in refused.text
        assert stranger.post("/ui/sign-up", data={"token": token, "password": PASSWORD, "again": PASSWORD + "x"}).status_code == 400
    with sign_up(hub, made) as alice:
        assert acting_as(alice) == f"{email} · viewer · {made['tenant_id']}"
        # The link worked once: again, and a made-up one, say so and change nothing.
        assert alice.post("/ui/sign-up", data={"token": token, "password": PASSWORD, "again": PASSWORD}).status_code == 404
        assert alice.get("/ui/sign-up?token=" + "x" * 43).status_code == 404
        # A viewer's session reads, and is refused a change with the role that would allow it.
        assert alice.get("/ui/agents").status_code == 200
        refused = alice.post("/ui/send/message", data={"to_agent": "nobody", "content": "hi", "csrf_token": csrf(alice)})
        assert refused.status_code == 403 and "operator" in refused.text

        # Made an operator: the same session carries the new role from its next request.
        ok(call(admin, "agora.memberships.set", user=email, role="operator", tenant=tenant))
        assert acting_as(alice) == f"{email} · operator · {made['tenant_id']}"

        # What the person does is theirs: a task they cancel in the console names them in its history.
        worker = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, role="developer"))["key"]
        with hub.client(worker) as developer:
            ok(call(developer, "agora.agents.register", agent_name=unique("reporter"), capabilities=["report"]))
            task = ok(call(developer, "agora.task.assign", task_type="report", required_capabilities=["report"]))
        cancelled = alice.post(f"/ui/tasks/{task['task_id']}/cancel", data={"csrf_token": csrf(alice), "reason": "not needed"})
        assert cancelled.status_code == 200, cancelled.text
        history = ok(call(admin, "agora.task.history", task_id=task["task_id"]))["transitions"]
        assert history[-1]["to_status"] == "cancelled" and history[-1]["actor"] == f"user:{made['user']['user_id']}"

        # The audit log names who changed the person's rights, and the person.
        audit = ok(call(admin, "agora.admin.audit", target_id=made["user"]["user_id"]))["entries"]
        assert {e["action"] for e in audit} >= {"user_added", "membership_set"}
        assert all(e["details"]["email"] == email for e in audit)

        # Taken out of the tenant: the session ends at once.
        ended = ok(call(admin, "agora.memberships.remove", user=email, tenant=tenant))
        assert ended["sessions_ended"] == 1 and ended["previous_role"] == "operator"
        gone = alice.get("/ui/agents", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/ui/sign-in")
    # Signing in again finds no tenant to act in, and says so.
    refused = sign_in(hub, email)
    assert refused.status_code == 409 and "member of no tenant" in refused.text


def test_wrong_passwords_are_refused_alike_and_braked(tmp_path) -> None:
    hub = HubProcess(tmp_path / "hub", extra_args=["--auth-failure-rate", "3/m:3"]).start()
    try:
        with hub.client() as admin:
            email = f"{unique('bob')}@example.com"
            with sign_up(hub, invite(admin, email, "developer", unique("team"))) as bob:
                assert acting_as(bob).startswith(f"{email} · developer")
        unknown = sign_in(hub, f"{unique('nobody')}@example.com")
        wrong = sign_in(hub, email, "not the password at all")
        assert unknown.status_code == wrong.status_code == 401
        assert "wrong email or password" in unknown.text and "wrong email or password" in wrong.text
        for _ in range(3):
            sign_in(hub, email, "still not the password")
        braked = sign_in(hub, email)  # the account is braked, even for the right password, for a while
        assert braked.status_code == 429 and "too many failed authentications" in braked.text
        with hub.client() as admin:  # keys and other accounts are not held up
            ok(call(admin, "agora.agents.list"))
    finally:
        hub.stop()


def test_a_second_factor_is_asked_once_set_and_recovery_codes_work_once(sqlite_hub: HubProcess) -> None:
    with sqlite_hub.client() as admin:
        email = f"{unique('carol')}@example.com"
        made = invite(admin, email, "billing", unique("team"))
    with sign_up(sqlite_hub, made) as carol:
        new = carol.post("/ui/account/two-factor/new", data={"csrf_token": csrf(carol)})
        secret = re.search(r'<code id="factor-secret">([A-Z2-7]+)</code>', new.text).group(1)  # type: ignore[union-attr]
        wrong = carol.post("/ui/account/two-factor", data={"csrf_token": csrf(carol), "secret": secret, "code": "000000"})
        assert wrong.status_code == 400 and "does not match" in wrong.text
        done = carol.post("/ui/account/two-factor", data={"csrf_token": csrf(carol), "secret": secret, "code": pyotp.TOTP(secret).now()})
        codes = re.findall(r"<li><code>([0-9a-f]{8}-[0-9a-f]{8})</code></li>", done.text)
        assert done.status_code == 200 and len(codes) == 10
    assert sign_in(sqlite_hub, email).status_code == 401  # the password alone no longer does
    assert sign_in(sqlite_hub, email, code="123456").status_code == 401
    assert sign_in(sqlite_hub, email, code=pyotp.TOTP(secret).now()).status_code == 303
    assert sign_in(sqlite_hub, email, code=codes[0]).status_code == 303
    assert sign_in(sqlite_hub, email, code=codes[0]).status_code == 401  # each recovery code works once


def test_a_tenant_admin_manages_only_its_own_people(hub: HubProcess, admin: httpx.Client) -> None:
    ours, theirs = unique("ours"), unique("theirs")
    boss = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=ours, role="admin"))["key"]
    outsider = f"{unique('dave')}@example.com"
    invite(admin, outsider, "operator", theirs)
    with hub.client(boss) as ours_admin:
        member = f"{unique('erin')}@example.com"
        made = ok(call(ours_admin, "agora.users.create", email=member, role="developer"))
        assert made["created"] and [m["role"] for m in made["user"]["memberships"]] == ["developer"]
        listed = ok(call(ours_admin, "agora.users.list"))["users"]
        assert [u["email"] for u in listed] == [member]
        # Another tenant's person is the 404 of no one; no hub admins, no other tenant.
        expect_error(call(ours_admin, "agora.memberships.set", user=outsider, role="viewer"), 404, "not_found")
        expect_error(call(ours_admin, "agora.memberships.remove", user=outsider), 404, "not_found")
        expect_error(call(ours_admin, "agora.users.create", email=f"{unique('x')}@example.com", role="viewer", tenant=theirs), 404, "not_found")
        expect_error(call(ours_admin, "agora.users.create", email=f"{unique('x')}@example.com", hub_admin=True), 403, "permission_denied")
        expect_error(call(ours_admin, "agora.users.remove", user=member), 403, "permission_denied")
    # Bad input is refused with the field named, and nothing is saved.
    expect_error(call(admin, "agora.users.create", email="not-an-email", role="viewer", tenant=ours), 422, "invalid_argument")
    expect_error(call(admin, "agora.users.create", email=f"{unique('y')}@example.com", tenant=ours), 400, "invalid_argument")
    assert ok(call(admin, "agora.users.list", tenant=ours))["users"] == listed


def test_the_command_line_adds_lists_and_removes_people(sqlite_hub: HubProcess) -> None:
    env = {"AGORA_URL": sqlite_hub.url, "AGORA_API_KEY": sqlite_hub.admin_key, "PATH": "/usr/bin:/bin"}
    email, tenant = f"{unique('frank')}@example.com", unique("cli")

    def agora(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agora", "users", *args], env=env, capture_output=True, text=True, timeout=60)

    added = agora("create", email, "--tenant", tenant, "--role", "operator")
    assert added.returncode == 0 and f"{sqlite_hub.url}/ui/sign-up?token=" in added.stdout, added.stderr
    listed = agora("ls", "--tenant", tenant, "--json")
    assert listed.returncode == 0 and email in listed.stdout and '"role": "operator"' in listed.stdout
    assert agora("set-role", email, "viewer", "--tenant", tenant).returncode == 0
    assert agora("create", email, "--tenant", tenant, "--role", "wizard").returncode == 2  # bad input: exit code 2
    removed = agora("remove", email, "--everywhere")
    assert removed.returncode == 0 and "removed" in removed.stdout
    assert email not in agora("ls", "--json").stdout


def test_removing_a_person_refuses_them_on_another_replica_within_a_second(two_replicas: tuple[HubProcess, HubProcess]) -> None:
    one, two = two_replicas
    with one.client() as admin:
        email = f"{unique('gina')}@example.com"
        made = invite(admin, email, "operator", unique("team"))
    with sign_up(one, made) as on_one, browser(two) as on_two:
        on_two.cookies.update(on_one.cookies)  # the same session, served by the other replica
        assert acting_as(on_two) == f"{email} · operator · {made['tenant_id']}"
        with one.client() as admin:
            started = time.monotonic()
            ok(call(admin, "agora.users.remove", user=email))
        while on_two.get("/ui/agents", follow_redirects=False).status_code != 303:
            assert time.monotonic() - started < 1.0, "the other replica still served the removed person after 1 s"
            time.sleep(0.01)


def test_a_sign_up_link_past_its_expiry_is_refused(tmp_path) -> None:
    """Store level (a link lives at least an hour): a taken or expired link sets no password."""
    engine = create_engine(f"sqlite:///{tmp_path / 'links.db'}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        migrate.upgrade(conn)
        user, _ = user_ops.create(conn, "hana@example.com", "", "test", now)
        user_ops.insert_link(conn, token_hash("expired"), user["user_id"], now + timedelta(hours=1), "test", now)
        assert user_ops.take_link(conn, token_hash("expired"), hash_password(PASSWORD), now + timedelta(hours=2)) is None
        assert user_ops.get(conn, user["user_id"])["password_hash"] is None
        assert user_ops.take_link(conn, token_hash("expired"), hash_password(PASSWORD), now) is not None
        assert user_ops.take_link(conn, token_hash("expired"), hash_password(PASSWORD), now) is None
    engine.dispose()


def test_a_tenant_admin_invites_changes_and_takes_out_people_in_the_console(sqlite_hub: HubProcess) -> None:
    tenant = unique("team")
    with sqlite_hub.client() as admin:
        boss = f"{unique('boss')}@example.com"
        made = invite(admin, boss, "admin", tenant)
    with sign_up(sqlite_hub, made) as console:
        assert "/ui/people" in console.get("/ui/account").text  # the People page is in a tenant admin's menu
        newcomer = f"{unique('ivan')}@example.com"
        invited = console.post("/ui/people/invite", data={"csrf_token": csrf(console), "email": newcomer, "role": "viewer"})
        link = re.search(r'<code id="signup-link">([^<]+)</code>', invited.text)
        assert invited.status_code == 200 and link and link.group(1).startswith(f"{sqlite_hub.url}/ui/sign-up?token=")
        with sqlite_hub.client() as admin:
            user_id = next(u["user_id"] for u in ok(call(admin, "agora.users.list", tenant=tenant))["users"] if u["email"] == newcomer)
        changed = console.post(f"/ui/people/{user_id}/role", data={"csrf_token": csrf(console), "role": "operator", "tenant": made["tenant_id"]})
        assert changed.status_code == 200 and "Now operator" in changed.text
        bad = console.post(f"/ui/people/{user_id}/role", data={"csrf_token": csrf(console), "role": "wizard", "tenant": made["tenant_id"]})
        assert bad.status_code == 422 and 'role="alert"' in bad.text
        out = console.post(f"/ui/people/{user_id}/remove", data={"csrf_token": csrf(console), "tenant": made["tenant_id"]})
        assert out.status_code == 200 and "Taken out" in out.text and newcomer not in out.text.split("Members")[1]
