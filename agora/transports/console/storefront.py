"""The marketplace storefront and billing: listings, instances, usage and invoices.

A customer browses listings (``agora.marketplace.discover``, each with its measured performance and price), opens one
(``get_listing``) and creates an instance from it; its instances are live pages (status, health, resource usage, cost
so far) with pause, resume, terminate and a form to execute a request. Billing shows a month's invoice
(``agora.billing.invoice``), the customer's usage month by month (``agora.billing.usage``) as charts drawn by the
shared ``static/charts.js`` from each figure's ``data-chart`` JSON, and streams the month's lines as CSV. Everything is a catalog call as the
signed-in principal, so another tenant's instance is the catalog's 404, shown as the console's not-found page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson
from markupsafe import Markup, escape
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError, InvalidArgument, NotFound
from agora_sdk.wire.marketplace import CoLocation, Execute, InstanceConfig, InstanceStatus, PricingModel

from .door import View, page
from .liveviews import live_view
from .export import csv_line
from .pages import FormAction, form_actions, list_page, tool_args
from .render import environment, render_text

LISTING_PAGE = 24
INSTANCE_PAGE = 50
USAGE_MONTHS = 12
MARKET_FILTERS = {"category": "category", "cursor": "cursor"}
SEARCH_FILTERS = {"q": "q", "category": "category", "max_price": "max_price", "region": "region", "cursor": "cursor"}
INSTANCE_FILTERS = {"status": "status", "cursor": "cursor"}
INSTANCE_STATUSES = [s.value for s in InstanceStatus]
PRICE_UNITS = {
    PricingModel.per_request: "per request", PricingModel.per_minute: "per running minute",
    PricingModel.per_hour: "per running hour", PricingModel.hybrid: "per request", PricingModel.per_unit: "per request",
}  # fmt: skip
CSV_COLUMNS = ["month", "instance_id", "agent_name", "pricing_model", "price", "base_fee", "running_seconds", "requests",
               "units", "base_cost", "usage_cost", "task_cost", "unit_cost", "total_cost", "currency"]  # fmt: skip


# -- formatting (filters prefixed market_: the environment is shared with the other pages) ---------------------------


def money(value: Decimal) -> str:
    """An amount as people read it: at least two decimals, at most the six the hub keeps (``0.50``, ``0.002``)."""
    text = f"{Decimal(value).quantize(Decimal('0.000001')):f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def duration(seconds: float | None) -> str:
    """``45 s``, ``12 min 5 s``, ``3 h 20 min``, ``2 d 4 h``."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    for big, big_size, small, small_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= big_size:
            rest = (whole % big_size) // small_size
            return f"{whole // big_size} {big}" + (f" {rest} {small}" if rest else "")
    return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"


def percent(value: float | None) -> str:
    return "not measured yet" if value is None else f"{value * 100:.1f} %"


environment.filters.update(market_money=money, market_duration=duration, market_percent=percent)
environment.globals.update(market_price_units=PRICE_UNITS)


# -- the storefront --------------------------------------------------------------------------------------------------


@live_view("market", every=30.0)  # others' instances move the listings' metrics: no event of this tenant says so
async def market_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    """Every listing a page at a time; with words to look for (``q``), the listings ranked by the search, each saying
    why it matched."""
    if params.get("q", "").strip():
        found = await view.call("agora.marketplace.search", kinds=["listing"], **{**tool_args(params, SEARCH_FILTERS), "limit": LISTING_PAGE})
        return {"market": render_text("_market_hits.html", view=view, found=found, params=params)}
    found = await view.call("agora.marketplace.discover", **{**tool_args(params, MARKET_FILTERS), "limit": LISTING_PAGE})
    return {"market": render_text("_market_rows.html", view=view, found=found, params=params)}


def highlighted(highlight: Any) -> Markup:
    """A search highlight as HTML: its text escaped, the matched words in ``<mark>``."""
    text: str = highlight.text
    parts: list[str] = []
    at = 0
    for span in highlight.spans:
        parts += [str(escape(text[at : span.start])), f"<mark>{escape(text[span.start : span.end])}</mark>"]
        at = span.end
    return Markup("".join([*parts, str(escape(text[at:]))]))


def reading(interpretation: Any) -> str:
    """What the search read as constraints, in words: "a price of at most 0.01; priced per request or hybrid"."""
    said = []
    if interpretation.max_price is not None:
        said.append(f"a price of at most {money(interpretation.max_price)}")
    if interpretation.pricing_models:
        said.append("priced " + " or ".join(m.replace("_", " ") for m in interpretation.pricing_models))
    if interpretation.languages:
        said.append("preferring listings in " + ", ".join(interpretation.languages))
    if interpretation.regions:
        said.append("preferring regions " + ", ".join(interpretation.regions))
    if interpretation.min_success_rate is not None:
        said.append(f"a success rate of at least {percent(interpretation.min_success_rate)}")
    return "; ".join(said) or "nothing to filter by"


environment.filters.update(market_highlighted=highlighted, market_reading=reading)


@page
async def marketplace(view: View) -> Response:
    """Listings, searched and filtered by the URL's query (so a search can be shared), a page at a time."""
    return await list_page(view, "market", "Marketplace", nav="marketplace")


def _field_help(model: type[Any], name: str) -> str:
    """A form field's hint: the catalog model's own description, so the form says what the tool does."""
    return str(model.model_fields[name].description or "")


FORM_HELP = {
    "memory_limit": _field_help(InstanceConfig, "memory_limit"),
    "cpu_limit": _field_help(InstanceConfig, "cpu_limit"),
    "env": "One NAME=value a line. " + _field_help(InstanceConfig, "env"),
    "preferred_region": "Default: the listing's preferred region.",
    "co_location": _field_help(CoLocation, "with_agent") + " The new one is placed on its node.",
}


@live_view("market_listing", every=30.0)
async def listing_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    found = await view.call("agora.marketplace.get_listing", listing=params.get("listing", ""))
    return {"market_listing": render_text("_market_listing_live.html", view=view, listing=found)}


@page
async def listing(view: View) -> Response:
    found = await view.call("agora.marketplace.get_listing", listing=view.request.path_params["listing_id"])
    fragment = render_text("_market_listing_live.html", view=view, listing=found)
    reviews = await view.call("agora.reviews.list", listing=found.listing_id, limit=20)
    return view.render(
        "market_listing.html", title=found.agent_name, nav="marketplace", listing=found, fragment=fragment, help=FORM_HELP, reviews=reviews
    )


def _env(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise InvalidArgument(f"environment, line {number}: write NAME=value", details={"field": "env"})
        env[name.strip()] = value
    return env


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def create_args(listing_id: str, form: FormData) -> dict[str, Any]:
    """The create form as ``agora.marketplace.create_instance`` takes it; blank fields are left to the tool's defaults
    (numbers go as typed: the catalog checks them and says what is wrong)."""
    config: dict[str, Any] = {name: _text(form, name) for name in ("memory_limit", "cpu_limit") if _text(form, name)}
    config["env"] = _env(str(form.get("env") or ""))
    args: dict[str, Any] = {"agent_id": listing_id, "instance_config": config}
    if _text(form, "preferred_region"):
        args["preferred_region"] = _text(form, "preferred_region")
    if _text(form, "co_location"):
        args["co_location"] = {"with_agent": _text(form, "co_location")}
    return args


@page
async def create_instance(view: View) -> Response:
    """The listing's form: the new instance's page, or the catalog's refusal beside the form."""
    form = await view.request.form()
    try:
        created = await view.call("agora.marketplace.create_instance", **create_args(view.request.path_params["listing_id"], form))
    except AgoraError as exc:
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    target = f"/ui/instances/{created.instance_id}"
    if view.partial:  # htmx follows HX-Redirect with a whole page load
        return view.render("_result.html", ok=True, message="Created; opening it…", headers={"HX-Redirect": target})
    return RedirectResponse(target, 303)


# -- instances -------------------------------------------------------------------------------------------------------


@live_view("market_instances")
async def instances_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    args = {**tool_args(params, INSTANCE_FILTERS, {"status": INSTANCE_STATUSES}), "limit": INSTANCE_PAGE}
    found = await view.call("agora.marketplace.list_instances", **args)
    html = render_text("_market_instances_rows.html", view=view, instances=found.instances, next_cursor=found.next_cursor, params=params)
    return {"market_instances": html}


@live_view("market_instance")
async def instance_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    inst = await view.call("agora.marketplace.get_instance", instance_id=params.get("instance", ""))
    return {"market_instance": render_text("_market_instance_live.html", view=view, inst=inst)}


@page
async def instances(view: View) -> Response:
    return await list_page(view, "market_instances", "Your instances", nav="marketplace", statuses=INSTANCE_STATUSES)


@page
async def instance(view: View) -> Response:
    instance_id = view.request.path_params["instance_id"]
    inst = await view.call("agora.marketplace.get_instance", instance_id=instance_id)
    fragment = render_text("_market_instance_live.html", view=view, inst=inst)
    return view.render("market_instance.html", title=inst.instance_agent_name, nav="marketplace", inst=inst, fragment=fragment,
                       endpoint_help=_field_help(Execute, "endpoint"))  # fmt: skip


def _terminate_args(form: FormData) -> dict[str, Any]:
    if form.get("confirm") != "yes":
        raise InvalidArgument("Tick “Yes, terminate it for good” first: a terminated instance cannot be started again.")
    return {"grace_seconds": 10.0}


# What a person may do to an instance from its page.
INSTANCE_ACTIONS: dict[str, FormAction] = {
    "pause": ("agora.marketplace.pause_instance", lambda form: {}, "Paused: its process is stopped, and so is its bill."),
    "resume": ("agora.marketplace.resume_instance", lambda form: {}, "Running again; billing runs again."),
    "terminate": ("agora.marketplace.terminate_instance", _terminate_args, "Terminating: billing has ended; it is stopped once its node confirms."),
}
instance_action = form_actions(INSTANCE_ACTIONS, "instance_id")


def _parameters(text: str) -> Any:
    if not text.strip():
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidArgument(f"parameters: not JSON ({exc})", details={"field": "parameters"}) from None


@page
async def execute(view: View) -> Response:
    """One request run on the instance; its result (or why not) is shown in place."""
    form = await view.request.form()
    try:
        args = {"endpoint": _text(form, "endpoint"), "parameters": _parameters(str(form.get("parameters") or ""))}
        if _text(form, "timeout"):
            args["timeout"] = _text(form, "timeout")
        done = await view.call("agora.marketplace.execute", instance_id=view.request.path_params["instance_id"], **args)
    except NotFound:
        raise
    except AgoraError as exc:
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    return view.render("_market_executed.html", done=done)


# -- billing ---------------------------------------------------------------------------------------------------------


CREDIT_ROWS = 10  # the newest ledger rows the billing page shows


def _billing_args(params: Mapping[str, str]) -> dict[str, Any]:
    """The month (YYYY-MM; the tool checks it) and, for the admin, the customer, from the URL."""
    return {key: params[key].strip() for key in ("month", "customer") if params.get(key, "").strip()}


def _shift(month: str, by: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:]) - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def chart_data(series: Any) -> dict[str, Any]:
    """What charts.js draws (see its header), one chart each (their scales differ by orders of magnitude): per month
    from its first instant (seconds, UTC), the cost, the running hours and the requests."""
    months = series.months
    x = [int(datetime.strptime(m.month, "%Y-%m").replace(tzinfo=UTC).timestamp()) for m in months]
    return {
        "cost": {"x": x, "series": [{"label": f"Cost ({series.currency})", "values": [float(m.cost) for m in months]}]},
        "hours": {"x": x, "series": [{"label": "Running hours", "values": [round(m.running_seconds / 3600, 4) for m in months], "color": "ok"}]},
        "requests": {"x": x, "series": [{"label": "Requests", "values": [m.requests for m in months], "color": "warn"}]},
    }


@dataclass(frozen=True)
class BillingView:
    invoice: Any
    html: str  # the live part: cards, the invoice, usage charts
    query: str  # the month (and, for the admin, the customer), as the live part and the export are asked for it
    customer: str


async def _billing_view(view: View, params: Mapping[str, str]) -> BillingView:
    args = _billing_args(params)
    customer = {k: v for k, v in args.items() if k == "customer"}
    invoice = await view.call("agora.billing.invoice", **args)
    usage = await view.call("agora.billing.usage", until=invoice.month, months=USAGE_MONTHS, **customer)
    board = None if customer else await view.call("agora.marketplace.dashboard")
    credits = await view.call("agora.billing.credits", limit=CREDIT_ROWS, **customer)
    budget = await view.call("agora.billing.budget", **customer)
    query = urlencode({"month": invoice.month, **customer})
    html = render_text(
        "_billing_live.html", view=view, invoice=invoice, usage=usage, board=board, chart=chart_data(usage),
        credits=credits, budget=budget, customer=args.get("customer", ""), query=query,
    )  # fmt: skip
    return BillingView(invoice, html, query, args.get("customer", ""))


@live_view("billing", every=30.0)  # an open month's bill grows as its instances run: no event says so
async def billing_fragments(view: View, params: Mapping[str, str]) -> dict[str, str]:
    return {"billing": (await _billing_view(view, params)).html}


@page
async def billing(view: View) -> Response:
    b = await _billing_view(view, view.request.query_params)
    month = b.invoice.month
    return view.render(
        "billing.html", title="Billing", nav="billing", invoice=b.invoice, fragments={"billing": b.html}, query=b.query,
        customer=b.customer, previous=_shift(month, -1), following=_shift(month, 1),
    )  # fmt: skip


@page
async def billing_export(view: View) -> Response:
    """The month's invoice lines as CSV, written line by line as the download goes."""
    invoice = await view.call("agora.billing.invoice", **_billing_args(view.request.query_params))

    async def lines() -> AsyncIterator[str]:
        yield csv_line(CSV_COLUMNS)
        for line in invoice.lines:
            p, c = line.pricing, line.cost
            yield csv_line([
                invoice.month, line.instance_id, line.agent_name, p.model.value, p.price, p.base_fee, line.running_seconds,
                line.requests, " ".join(f"{u}={n}" for u, n in line.units.items()), c.base_cost, c.usage_cost, c.task_cost,
                c.unit_cost, c.total_cost, c.currency,
            ])  # fmt: skip

    name = f"agora-invoice-{invoice.customer}-{invoice.month}.csv"
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


ROUTES: list[BaseRoute] = [
    Route("/ui/marketplace", marketplace, methods=["GET"]),
    Route("/ui/marketplace/{listing_id}", listing, methods=["GET"]),
    Route("/ui/marketplace/{listing_id}/instances", create_instance, methods=["POST"]),
    Route("/ui/instances", instances, methods=["GET"]),
    Route("/ui/instances/{instance_id}", instance, methods=["GET"]),
    Route("/ui/instances/{instance_id}/execute", execute, methods=["POST"]),
    Route("/ui/instances/{instance_id}/{action}", instance_action, methods=["POST"]),
    Route("/ui/billing", billing, methods=["GET"]),
    Route("/ui/billing/export.csv", billing_export, methods=["GET"]),
]
