"""Admin: API keys (create — the secret shown once —, list, revoke), the audit log, overrides (an agent paused,
resumed or terminated; the whole hub halted or resumed).

For the hub administrator only: every page here refuses anyone else with the 403 that the catalog's ``admin_only``
tools give, before it calls anything. Each form's answer, or the catalog's error with its own message, is shown in
place beside the control; a refused change changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from agora.core.auth import ALL_SCOPES
from agora_sdk.errors import AgoraError, InvalidArgument, PermissionDenied
from agora_sdk.wire.admin import KeyKind, OverrideAction, Role

from .door import Handler, View, page
from .liveviews import live_view
from .pages import tool_args
from .render import render_text

REFUSED = "The admin pages are for the hub administrator (authority 255): sign in with an admin key to use them."
KEY_KINDS = [k.value for k in KeyKind]
ROLES = [r.value for r in Role]
SCOPES = sorted(ALL_SCOPES)
KEY_FILTERS = {"tenant": "tenant", "kind": "kind", "cursor": "cursor"}
AUDIT_FILTERS = {"action": "action", "target": "target_id", "cursor": "cursor"}
AUDIT_ACTIONS = ["key_created", "key_revoked", "oauth_granted", *(f"override.{a.value}" for a in OverrideAction)]
AGENT_ACTIONS = [OverrideAction.pause.value, OverrideAction.resume.value, OverrideAction.terminate.value]
SYSTEM_ACTIONS = {"halt": OverrideAction.emergency_halt, "resume": OverrideAction.resume}
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def admin_page(handler: Handler) -> Callable[..., Awaitable[Response]]:
    """A console page for the administrator only; anyone else gets the 403 page, and nothing is called."""

    async def guarded(view: View) -> Response:
        if not view.is_admin:
            raise PermissionDenied(REFUSED)
        return await handler(view)

    guarded.__name__ = handler.__name__
    return page(guarded)


def _field_of(exc: AgoraError) -> str | None:
    """The form field a catalog error is about (its ``details.field``, or the first invalid input's), if it says."""
    field = exc.details.get("field")
    errors = exc.details.get("errors")
    if not isinstance(field, str) and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
    return field if isinstance(field, str) else None


# -- keys ---------------------------------------------------------------------------------------------------------


async def _keys_rows(view: View, params: Mapping[str, str]) -> tuple[int, str]:
    """The keys table for the page's filters, or the filter's error (an unknown tenant, a bad cursor) in its place."""
    try:
        args = {**tool_args(params, KEY_FILTERS, {"kind": KEY_KINDS}), "newest_first": True}
        if params.get("revoked"):
            args["include_revoked"] = True
        found = await view.call("agora.admin.keys.list", **args)
    except AgoraError as exc:
        return exc.status, render_text("_result.html", ok=False, message=exc.message)
    return 200, render_text("_admin_keys_rows.html", view=view, keys=found.keys, next_cursor=found.next_cursor, params=params)


@live_view("admin-keys", every=10.0)  # a key created or revoked is no hub event: look again every 10 s
async def keys_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    if not view.is_admin:
        raise PermissionDenied(REFUSED)
    return {"admin-keys": (await _keys_rows(view, params))[1]}


async def _keys_page(view: View, status: int = 200, **context: Any) -> Response:
    """The whole keys page; ``context`` is the create form's state (:func:`_form_state`) or a revoke's ``notice``."""
    params = view.request.query_params
    rows_status, rows = await _keys_rows(view, params)
    context = {**_form_state(), "notice": None, **context}
    return view.render(
        "admin_keys.html", max(status, rows_status), title="Admin · Keys", nav="admin", section="keys", rows=rows,
        params=params, kinds=KEY_KINDS, roles=ROLES, scopes=SCOPES, **context,
    )  # fmt: skip


def _form_state(values: Mapping[str, Any] | None = None, created: Any = None, error: AgoraError | None = None) -> dict[str, Any]:
    """What the create form shows: what was typed (kept after an error), the new key, or the error and its field."""
    return {
        "values": values or {},
        "created": created,
        "error": error.message if error else None,
        "error_field": _field_of(error) if error else None,
    }


@admin_page
async def admin_home(view: View) -> Response:
    return RedirectResponse("/ui/admin/keys", 303)


@admin_page
async def keys(view: View) -> Response:
    """The keys page; its filters changed (htmx) or a key was created elsewhere on it: the table alone."""
    if view.partial:
        status, rows = await _keys_rows(view, view.request.query_params)
        return view.render("_region.html", status, name="admin-keys", query=view.request.url.query, html=rows)
    return await _keys_page(view)


@admin_page
async def create_key(view: View) -> Response:
    """The create form: the new key's secret shown once in its place (never in a URL, never stored by the page), or
    the catalog's error beside the field it is about, with what was typed kept."""
    form = await view.request.form()
    values: dict[str, Any] = {name: str(form.get(name) or "").strip() for name in ("kind", "name", "tenant", "agent", "role")}
    args: dict[str, Any] = {name: value for name, value in values.items() if value}
    values["scopes"] = [str(s) for s in form.getlist("scopes")]
    if values["scopes"]:
        args["scopes"] = values["scopes"]
    try:
        state, status = _form_state(created=await view.call("agora.admin.keys.create", **args)), 200
    except AgoraError as exc:
        state, status = _form_state(values, error=exc), exc.status
    if not view.partial:
        return await _keys_page(view, status, **state)
    response = view.render("_admin_key_form.html", status, kinds=KEY_KINDS, roles=ROLES, scopes=SCOPES, **state)
    if state["created"]:
        response.headers["hx-trigger"] = "keys-changed"  # the table below shows the new key
    return response


@admin_page
async def revoke_key(view: View) -> Response:
    """A key's revoke button (confirmed): its row again, revoked; or the catalog's error beside the button."""
    key_id = view.request.path_params["key_id"]
    try:
        revoked = await view.call("agora.admin.keys.revoke", key_id=key_id)
    except AgoraError as exc:
        if not view.partial:
            return await _keys_page(view, exc.status, notice={"ok": False, "message": exc.message})
        response = view.render("_result.html", exc.status, ok=False, message=exc.message)
        if _SAFE_ID.fullmatch(key_id):
            response.headers.update({"hx-retarget": f"#revoke-{key_id}-result", "hx-reswap": "innerHTML"})
        return response
    message = f"Key {revoked.key_id} revoked: anything signed in with it is signed out now."
    if not view.partial:
        return await _keys_page(view, notice={"ok": True, "message": message})
    return view.render("_admin_key_row.html", key=revoked.info, message=message)


# -- audit log ----------------------------------------------------------------------------------------------------


@live_view("admin-audit", every=10.0)  # a key created or revoked is no hub event: look again every 10 s
async def audit_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    """The audit log, newest first, a page at a time (keyset: older entries follow the cursor)."""
    if not view.is_admin:
        raise PermissionDenied(REFUSED)
    log = await view.call("agora.admin.audit", **tool_args(params, AUDIT_FILTERS))
    return {"admin-audit": render_text("_admin_audit_rows.html", view=view, entries=log.entries, next_cursor=log.next_cursor, params=params)}


@admin_page
async def audit(view: View) -> Response:
    params = view.request.query_params
    rows = (await audit_fragments(view, params))["admin-audit"]
    if view.partial:
        return view.render("_region.html", name="admin-audit", query=view.request.url.query, html=rows)
    return view.render("admin_audit.html", title="Admin · Audit log", nav="admin", section="audit", rows=rows, params=params, actions=AUDIT_ACTIONS)


# -- overrides ----------------------------------------------------------------------------------------------------


@live_view("admin-overrides")
async def overrides_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    """The hub's halt switch and the paused agents, as they are now (an override is a hub event: it wakes this)."""
    if not view.is_admin:
        raise PermissionDenied(REFUSED)
    system = (await view.call("agora.admin.health", component="system")).components["system"]
    paused = await view.call("agora.query.agents", **tool_args(params, {"cursor": "cursor"}), status="paused")
    html = render_text("_admin_overrides_state.html", view=view, system=system, paused=paused.agents, next_cursor=paused.next_cursor)
    return {"admin-overrides": html}


async def _overrides_page(view: View, status: int = 200, results: Mapping[str, Mapping[str, Any]] | None = None) -> Response:
    fragments = await overrides_fragments(view, view.request.query_params)
    return view.render(
        "admin_overrides.html", status, title="Admin · Overrides", nav="admin", section="overrides", fragments=fragments,
        agent_actions=AGENT_ACTIONS, results=results or {},
    )  # fmt: skip


@admin_page
async def overrides(view: View) -> Response:
    return await _overrides_page(view)


async def _answer(view: View, form: str, outcome: str | AgoraError) -> Response:
    """An override form's answer (or the catalog's error) beside it: the fragment for htmx, else the whole page
    with the answer in its place."""
    ok = isinstance(outcome, str)
    status, message = (200, outcome) if isinstance(outcome, str) else (outcome.status, outcome.message)
    if view.partial:
        return view.render("_result.html", status, ok=ok, message=message)
    return await _overrides_page(view, status, {form: {"ok": ok, "message": message}})


async def _override(view: View, target: str, action: OverrideAction, reason: str) -> str:
    result = await view.call("agora.admin.override", target_id=target, action=action.value, reason=reason)
    return str(result.override_id)


@admin_page
async def override_agent(view: View) -> Response:
    form = await view.request.form()
    target, action = str(form.get("agent") or "").strip(), str(form.get("action") or "")
    try:
        if action not in AGENT_ACTIONS:
            raise InvalidArgument(f"choose an action: {', '.join(AGENT_ACTIONS)}")
        if not target:
            raise InvalidArgument("name the agent (its id or name)")
        if action == OverrideAction.terminate and not form.get("confirm"):
            raise InvalidArgument("terminating cannot be undone (it also revokes the agent's keys): tick the box to confirm")
        override_id = await _override(view, target, OverrideAction(action), str(form.get("reason") or ""))
    except AgoraError as exc:
        return await _answer(view, "agent", exc)
    past = {"pause": "paused", "resume": "resumed", "terminate": "terminated"}[action]
    return await _answer(view, "agent", f"Agent {target} {past} (override {override_id}).")


@admin_page
async def override_system(view: View) -> Response:
    form = await view.request.form()
    choice = str(form.get("action") or "")
    action = SYSTEM_ACTIONS.get(choice)
    try:
        if action is None:
            raise InvalidArgument("the whole hub can be halted or resumed")
        if action is OverrideAction.emergency_halt and form.get("confirm") != "halt":
            raise InvalidArgument("halting refuses all new work on the hub: tick the box to confirm")
        override_id = await _override(view, "system_wide", action, str(form.get("reason") or ""))
    except AgoraError as exc:
        return await _answer(view, "resume" if choice == "resume" else "halt", exc)
    if action is OverrideAction.emergency_halt:
        return await _answer(view, "halt", f"The hub is halted: it refuses new work until resumed (override {override_id}).")
    return await _answer(view, "resume", f"The hub is running again (override {override_id}).")


ROUTES: list[BaseRoute] = [
    Route("/ui/admin", admin_home, methods=["GET"]),
    Route("/ui/admin/keys", keys, methods=["GET"]),
    Route("/ui/admin/keys", create_key, methods=["POST"]),
    Route("/ui/admin/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
    Route("/ui/admin/audit", audit, methods=["GET"]),
    Route("/ui/admin/overrides", overrides, methods=["GET"]),
    Route("/ui/admin/overrides/agent", override_agent, methods=["POST"]),
    Route("/ui/admin/overrides/system", override_system, methods=["POST"]),
]
