"""The console's admin pages without a browser: admin-only, CSRF, keys (the secret shown once, errors beside their
field), the audit log's pages, overrides (an unknown agent refused in place; the halt only when confirmed)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import call, ok, unique
from tests.hubproc import HubProcess
from tests.test_console_http import browser, next_fragment, sign_in


@pytest.fixture(scope="module")
def admin_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """A hub of its own: a test here halts it."""
    hub = HubProcess(tmp_path_factory.mktemp("hub-console-admin")).start()
    yield hub
    hub.stop()


@pytest.fixture
def admin_browser(admin_hub: HubProcess) -> Iterator[httpx.Client]:
    with browser(admin_hub) as b:
        sign_in(b, admin_hub.admin_key)
        yield b


def htmx(b: httpx.Client) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": b.cookies["agora_csrf"]}


def keys_of(hub: HubProcess, **args: Any) -> list[dict[str, Any]]:
    with hub.client() as admin:
        return ok(call(admin, "agora.admin.keys.list", limit=500, **args))["keys"]  # type: ignore[no-any-return]


def test_a_customer_is_refused_every_admin_page_and_change(admin_hub: HubProcess) -> None:
    with admin_hub.client() as admin:
        tenant = unique("tenant")
        customer = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, scopes=["agents:read", "admin"]))
    with browser(admin_hub) as b:
        sign_in(b, customer["key"])
        assert 'href="/ui/admin"' not in b.get("/ui").text
        for path in ("/ui/admin", "/ui/admin/keys", "/ui/admin/audit", "/ui/admin/overrides", "/ui/live/admin-overrides",
                     "/ui/live/admin-audit", "/ui/live/admin-keys"):
            refused = b.get(path)
            assert refused.status_code == 403 or "event: gone" in refused.text, path
            if refused.status_code == 403:
                assert "for the hub administrator" in refused.text, path
        before = len(keys_of(admin_hub, tenant=tenant))
        created = b.post("/ui/admin/keys", data={"kind": "customer", "csrf_token": b.cookies["agora_csrf"]})
        assert created.status_code == 403 and len(keys_of(admin_hub, tenant=tenant)) == before


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(admin_hub: HubProcess, admin_browser: httpx.Client) -> None:
    b = admin_browser
    tenant = unique("tenant")
    assert b.post("/ui/admin/keys", data={"kind": "customer", "tenant": tenant}).status_code == 403
    with admin_hub.client() as admin:
        assert ok(call(admin, "agora.admin.keys.list", tenant="default"))  # (the hub answers)
        assert call(admin, "agora.admin.keys.list", tenant=tenant).status_code == 404  # no key made the tenant
        created = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant))
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("calm")))
        assert b.post(f"/ui/admin/keys/{created['info']['key_id']}/revoke").status_code == 403
        assert b.post("/ui/admin/overrides/agent", data={"agent": agent["agent_id"], "action": "pause", "reason": "x"}).status_code == 403
        assert b.post("/ui/admin/overrides/system", data={"action": "halt", "reason": "x", "confirm": "halt"}).status_code == 403
        assert [k["revoked_at"] for k in keys_of(admin_hub, tenant=tenant)] == [None]
        assert ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["status"] == "active"
        assert ok(call(admin, "agora.admin.health", component="system"))["status"] == "healthy"


def test_a_created_key_is_shown_once_and_never_again(admin_hub: HubProcess, admin_browser: httpx.Client) -> None:
    b = admin_browser
    tenant = unique("tenant")
    page = b.post("/ui/admin/keys", data={"kind": "customer", "name": "ci", "tenant": tenant, "csrf_token": b.cookies["agora_csrf"]})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    secret = re.search(r'<output id="new-key"[^>]*>(agora_sk_[A-Za-z0-9_-]+)</output>', page.text)
    assert secret and "will not be shown again" in page.text
    (key,) = keys_of(admin_hub, tenant=tenant)
    assert key["name"] == "ci" and "admin" not in key["scopes"]
    assert secret.group(1) not in b.get("/ui/admin/keys").text
    assert secret.group(1) not in b.get(f"/ui/admin/keys?tenant={tenant}").text
    with admin_hub.client(secret.group(1)) as customer:
        assert ok(call(customer, "agora.agents.list"))["count"] == 0

    fragment = b.post("/ui/admin/keys", data={"kind": "customer", "tenant": tenant, "scopes": ["agents:read", "tasks:read"]}, headers=htmx(b))
    assert fragment.status_code == 200 and fragment.headers["hx-trigger"] == "keys-changed"
    assert fragment.text.lstrip().startswith('<section id="key-create"') and "agora_sk_" in fragment.text
    assert ["agents:read", "tasks:read"] in [k["scopes"] for k in keys_of(admin_hub, tenant=tenant)]


@pytest.mark.parametrize(
    ("form", "status", "field", "says"),
    [
        ({"kind": "agent"}, 400, "agent", "needs 'agent'"),
        ({"kind": "agent", "agent": "agent-that-is-not-there"}, 404, "agent", "agent-that-is-not-there"),
        ({"kind": "customer", "scopes": ["agents:read", "nonsense:scope"]}, 400, "scopes", "unknown scope"),
        ({"kind": "superuser"}, 422, "kind", "kind"),
    ],
)
def test_a_refused_key_is_told_beside_its_field_and_nothing_is_created(
    admin_hub: HubProcess, admin_browser: httpx.Client, form: dict[str, Any], status: int, field: str, says: str
) -> None:
    b = admin_browser
    before = len(keys_of(admin_hub, include_revoked=True))
    answer = b.post("/ui/admin/keys", data={"name": "kept as typed", **form}, headers=htmx(b))
    assert answer.status_code == status, answer.text
    marked = r'<fieldset class="adm-scopes" aria-describedby="key-create-error"' if field == "scopes" else rf'id="key-{field}" name="{field}"[^>]*aria-invalid="true"'
    assert re.search(marked, answer.text), answer.text
    shown = html.unescape(answer.text)
    assert 'role="alert"' in shown and says in shown and 'value="kept as typed"' in shown
    assert "hx-trigger" not in answer.headers and "agora_sk_" not in answer.text
    assert len(keys_of(admin_hub, include_revoked=True)) == before


def test_keys_are_filtered_by_tenant_and_kind_and_revoked_in_their_row(admin_hub: HubProcess, admin_browser: httpx.Client) -> None:
    b = admin_browser
    tenant = unique("tenant")
    with admin_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("keyed")))
        customer = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant, name="the customer key"))
        agent_key = ok(call(admin, "agora.admin.keys.create", kind="agent", agent=agent["agent_id"]))
    page = b.get(f"/ui/admin/keys?tenant={tenant}")
    assert page.status_code == 200 and customer["info"]["key_id"] in page.text and agent_key["info"]["key_id"] not in page.text
    agents_only = b.get("/ui/admin/keys?kind=agent", headers={"HX-Request": "true"})
    assert agent_key["info"]["key_id"] in agents_only.text and customer["info"]["key_id"] not in agents_only.text
    assert "<h1>" not in agents_only.text
    unknown = b.get("/ui/admin/keys?tenant=no-such-tenant-here")
    assert unknown.status_code == 404 and "no tenant" in unknown.text and "Create a key" in unknown.text
    assert b.get("/ui/admin/keys?kind=root").status_code == 400

    key_id = customer["info"]["key_id"]
    row = b.post(f"/ui/admin/keys/{key_id}/revoke", headers=htmx(b))
    assert row.status_code == 200 and row.text.lstrip().startswith(f'<tr id="key-{key_id}"')
    assert ">revoked<" in row.text and "Revoke…" not in row.text
    assert keys_of(admin_hub, tenant=tenant) == []
    assert key_id not in b.get(f"/ui/admin/keys?tenant={tenant}").text
    assert key_id in b.get(f"/ui/admin/keys?tenant={tenant}&revoked=1").text

    with admin_hub.client() as admin:
        other = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant))["info"]["key_id"]
    without_script = b.post(f"/ui/admin/keys/{other}/revoke", data={"csrf_token": b.cookies["agora_csrf"]})
    assert without_script.status_code == 200 and "signed out now" in without_script.text and "Create a key" in without_script.text

    missing = b.post("/ui/admin/keys/key_00000000000000000000000000/revoke", headers=htmx(b))
    assert missing.status_code in (404, 422) and 'role="alert"' in missing.text
    assert missing.headers["hx-retarget"] == "#revoke-key_00000000000000000000000000-result"


def test_the_audit_log_is_newest_first_and_paged(admin_hub: HubProcess, admin_browser: httpx.Client) -> None:
    b = admin_browser
    tenant = unique("tenant")
    with admin_hub.client() as admin:
        made = [ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant))["info"]["key_id"] for _ in range(53)]
        ok(call(admin, "agora.admin.keys.revoke", key_id=made[0]))
    first = b.get("/ui/admin/audit?action=key_created")
    assert first.status_code == 200
    shown = re.findall(r"<code>(key_[a-z0-9]+)</code>", first.text)
    assert len(shown) == 50 and shown[:3] == made[::-1][:3]
    older = re.search(r'href="(/ui/admin/audit\?action=key_created&amp;cursor=[^"]+)">Older entries', first.text)
    assert older
    second = b.get(older.group(1).replace("&amp;", "&"))
    rest = re.findall(r"<code>(key_[a-z0-9]+)</code>", second.text)
    assert made[2] in rest and not set(rest) & set(shown) and "Newest" in second.text
    revoked = b.get(f"/ui/admin/audit?target={made[0]}")
    assert "key_revoked" in revoked.text and "key_created" in revoked.text
    table = revoked.text[revoked.text.index("<tbody>") :]
    assert table.index("key_revoked") < table.index("key_created")
    assert b.get("/ui/admin/audit?cursor=garbage").status_code == 400


def test_a_key_created_elsewhere_shows_on_the_open_keys_page(admin_hub: HubProcess, admin_browser: httpx.Client) -> None:
    """No hub event says a key was created (by the CLI, say): the open page looks again every 10 s."""
    tenant = unique("tenant")
    with admin_browser.stream("GET", f"/ui/live/admin-keys?tenant={tenant}", timeout=30) as stream:
        lines = stream.iter_lines()
        assert "key_" not in next_fragment(lines, "admin-keys")
        with admin_hub.client() as admin:
            made = ok(call(admin, "agora.admin.keys.create", kind="customer", tenant=tenant))["info"]["key_id"]
        next_fragment(lines, "admin-keys", until=made)  # (it fails if the stream ends first)


def test_the_audit_log_shows_an_override_while_it_is_open(admin_hub: HubProcess, admin_browser: httpx.Client) -> None:
    """An override is a hub event: the open audit log's live region gets the entry without a reload."""
    b = admin_browser
    with admin_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("audited")))
        assert 'sse-connect="/ui/live/admin-audit?target=' in b.get(f"/ui/admin/audit?target={agent['agent_id']}").text
        with b.stream("GET", f"/ui/live/admin-audit?target={agent['agent_id']}", timeout=30) as stream:
            lines = stream.iter_lines()
            assert "No audit entries match" in next_fragment(lines, "admin-audit")
            ok(call(admin, "agora.admin.override", target_id=agent["agent_id"], action="pause", reason="audited live"))
            next_fragment(lines, "admin-audit", until="audited live")  # (it fails if the stream ends first)
        ok(call(admin, "agora.admin.override", target_id=agent["agent_id"], action="resume", reason="done"))  # as found


def test_overrides_pause_an_agent_refuse_an_unknown_one_and_halt_only_when_confirmed(
    admin_hub: HubProcess, admin_browser: httpx.Client
) -> None:
    b = admin_browser
    with admin_hub.client() as admin:
        agent = ok(call(admin, "agora.agents.register", agent_name=unique("pausable")))

        def status() -> str:
            return str(ok(call(admin, "agora.agents.get", agent=agent["agent_id"]))["status"])

        def halted() -> bool:
            return ok(call(admin, "agora.admin.health", component="system"))["status"] != "healthy"  # type: ignore[no-any-return]

        page = b.get("/ui/admin/overrides")
        assert page.status_code == 200 and "No agent is paused" in page.text and ">running<" in page.text
        done = b.post("/ui/admin/overrides/agent", data={"agent": agent["agent_name"], "action": "pause", "reason": "checking"}, headers=htmx(b))
        assert done.status_code == 200 and "paused" in done.text and status() == "paused"
        assert agent["agent_name"] in b.get("/ui/admin/overrides").text

        unknown = b.post("/ui/admin/overrides/agent", data={"agent": "nobody-by-this-name", "action": "resume", "reason": "x"}, headers=htmx(b))
        assert unknown.status_code == 404 and 'role="alert"' in unknown.text and "nobody-by-this-name" in unknown.text
        without_script = b.post("/ui/admin/overrides/agent", data={"agent": "nobody-by-this-name", "action": "pause", "reason": "x", "csrf_token": b.cookies["agora_csrf"]})
        assert without_script.status_code == 404 and "<h1>Admin</h1>" in without_script.text
        assert re.search(r'id="agent-override-result"[^>]*><p class="error" role="alert">[^<]*nobody-by-this-name', without_script.text)
        no_reason = b.post("/ui/admin/overrides/agent", data={"agent": agent["agent_id"], "action": "resume", "reason": ""}, headers=htmx(b))
        assert no_reason.status_code == 422 and "reason" in no_reason.text and status() == "paused"
        unconfirmed = b.post("/ui/admin/overrides/agent", data={"agent": agent["agent_id"], "action": "terminate", "reason": "x"}, headers=htmx(b))
        assert unconfirmed.status_code == 400 and status() == "paused"

        refused = b.post("/ui/admin/overrides/system", data={"action": "halt", "reason": "drill"}, headers=htmx(b))
        assert refused.status_code == 400 and "confirm" in refused.text and not halted()
        try:
            halt = b.post("/ui/admin/overrides/system", data={"action": "halt", "reason": "drill", "confirm": "halt"}, headers=htmx(b))
            assert halt.status_code == 200 and "halted" in halt.text and halted()
            assert ">halted<" in b.get("/ui/admin/overrides").text
        finally:
            resume = b.post("/ui/admin/overrides/system", data={"action": "resume", "reason": "drill over"}, headers=htmx(b))
        assert resume.status_code == 200 and not halted()
        entries = ok(call(admin, "agora.admin.audit", target_id="system_wide"))["entries"]
        assert [e["action"] for e in entries[:2]] == ["override.resume", "override.emergency_halt"]
