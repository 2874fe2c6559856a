"""The deterministic planner's words: templates filled only from tool results (and the user's own words), so an
answer says nothing the tools did not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

SHOWN = 5  # results named in a search answer (all of them are in data)
_UNITS = {"per_request": "request", "per_minute": "minute", "per_hour": "hour", "hybrid": "request"}


def money(amount: Any, currency: str | None) -> str:
    value = Decimal(str(amount))
    text = f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else f"{value.normalize():f}"
    return f"${text}" if (currency or "USD") == "USD" else f"{text} {currency}"


def price(pricing: dict[str, Any] | None) -> str:
    """'$0.004 per request', '$0.50 per hour', '$1 per hour + $0.002 per request', '$0.003 per 1,000 input_tokens',
    'free'."""
    if not pricing or pricing.get("price") is None:
        return "price not stated"
    model, currency = pricing.get("model"), pricing.get("currency")
    per = f"{money(pricing['price'], currency)} per {_UNITS.get(model or '', 'use')}"
    base = pricing.get("base_fee")
    if model == "hybrid" and base is not None and Decimal(str(base)):
        return f"{money(base, currency)} per hour + {per}"
    if model == "per_unit" and pricing.get("units"):
        units = " + ".join(f"{money(u['price'], currency)} per {u['per']:,} {name}" for name, u in pricing["units"].items())
        return units if not Decimal(str(pricing["price"])) else f"{per} + {units}"
    return "free" if not Decimal(str(pricing["price"])) and not (base and Decimal(str(base))) else per


def percent(value: float | None) -> str | None:
    return None if value is None else f"{value:.0%}" if value * 100 == round(value * 100) else f"{value:.1%}"


def filters(params: dict[str, Any]) -> str:
    """The filters read from the message, as a reader would say them."""
    said = []
    if "category" in params:
        said.append(f"category {params['category']}")
    if "max_price" in params:
        unit = _UNITS.get(params.get("pricing_model", ""), "")
        said.append("free" if not Decimal(params["max_price"]) else f"at most {money(params['max_price'], None)}{' per ' + unit if unit else ''}")
    if "pricing_model" in params and "max_price" not in params:
        said.append(params["pricing_model"].replace("_", " "))
    if "region" in params:
        region = params["region"]
        said.append(f"region {region}" if "-" in region else f"regions {region}-*")
    if "language" in params:
        said.append(f"language {params['language']}")
    if "min_success_rate" in params:
        said.append(f"success rate at least {percent(params['min_success_rate'])}")
    if "min_rating" in params:
        said.append(f"rated at least {params['min_rating']:g}")
    if "sort" in params:
        said.append(f"best {'rated' if params['sort'] == 'rating' else 'reputation'} first")
    return ", ".join(said)


def hit_line(number: int, hit: dict[str, Any]) -> str:
    if hit["kind"] == "listing":
        info = hit.get("marketplace_info") or {}
        facts = [hit.get("category") or "", price(info.get("pricing_info") or hit.get("pricing")), hit.get("region") or ""]
        rate = percent((info.get("performance_metrics") or {}).get("success_rate"))
        if rate:
            facts.append(f"{rate} success")
        if info.get("rating_count"):
            facts.append(f"rated {info['rating']:.1f} ({info['rating_count']})")
        kind = "listing"
    else:
        facts = [f"status {hit['status']}"] if hit.get("status") else []
        kind = "your agent"
    described = f" — {_short(hit.get('description') or '')}" if hit.get("description") else ""
    return f"{number}. {hit['name']} ({kind}; {', '.join(f for f in facts if f)}){described}"


def search(need: str, params: dict[str, Any], found: dict[str, Any]) -> str:
    hits = found["results"]
    wanted = f"“{need}”" + (f" ({filters(params)})" if filters(params) else "")
    corrections = found.get("interpretation", {}).get("corrections") or {}
    fixed = f" I read {', '.join(f'“{k}” as “{v}”' for k, v in corrections.items())}." if corrections else ""
    if not hits:
        loosen = " Fewer filters may find more." if filters(params) else ""
        return f"I found nothing for {wanted}.{fixed}{loosen}"
    more = " (and more: ask for the next page)" if found.get("next_cursor") else ""
    lines = [hit_line(i, hit) for i, hit in enumerate(hits[:SHOWN], start=1)]
    rest = f"\n…and {len(hits) - SHOWN} more in the data." if len(hits) > SHOWN else ""
    return f"I found {len(hits)} match{'es' if len(hits) != 1 else ''} for {wanted}{more}:{fixed}\n" + "\n".join(lines) + rest


def listing(found: dict[str, Any]) -> str:
    info = found.get("marketplace_info") or {}
    availability, performance = info.get("availability") or {}, info.get("performance_metrics") or {}
    facts = [
        f"category {found['category']}",
        f"capabilities {', '.join(found['capabilities'])}" if found.get("capabilities") else "",
        f"pricing {price(found.get('pricing'))}",
        f"region {(found.get('host_requirements') or {}).get('preferred_region')}" if (found.get("host_requirements") or {}).get("preferred_region") else "",
        f"languages {', '.join(found['languages'])}" if found.get("languages") else "",
    ]
    lines = [f"{found['agent_name']} (listing {found['listing_id']}, version {found['version']}, published by {found['publisher']}, {found['status']})",
             found.get("description") or "(no description)", "; ".join(f for f in facts if f) + "."]  # fmt: skip
    if availability:
        open_ = "available" if availability.get("available") else "not available now"
        lines.append(f"Instances: {availability.get('current_instances')} of {availability.get('max_instances')} running, {open_}; yours: {info.get('customer_instances', 0)}.")
    rate, up = percent(performance.get("success_rate")), percent(performance.get("availability"))
    if performance.get("tasks_measured"):
        timing = f", {performance['average_response_time']:.2f} s on average" if performance.get("average_response_time") is not None else ""
        lines.append(f"Measured: {rate} success over {performance['tasks_measured']} tasks{timing}" + (f", {up} availability." if up else "."))
    else:
        lines.append("No tasks measured yet.")
    return "\n".join(lines)


def agent(found: dict[str, Any]) -> str:
    capabilities = ", ".join(found.get("capabilities") or []) or "none declared"
    heartbeat = f", last heartbeat {found['last_heartbeat']}" if found.get("last_heartbeat") else ""
    return (f"{found['agent_name']} (agent {found['agent_id']}, tenant {found['tenant_id']}): status {found['status']}{heartbeat}; "
            f"tier {found['service_tier']}; capabilities {capabilities}.\n{found.get('description') or '(no description)'}")  # fmt: skip


def stats(counts: dict[str, Any], agents: dict[str, Any] | None) -> str:
    category = counts.get("category")
    where = f" in category {category}" if category else ""
    by_category = counts["listings_by_category"]
    lines = [f"The marketplace lists {counts['listings']} listing{'s' if counts['listings'] != 1 else ''}{where}"
             + (f" in {len(by_category)} categor{'y' if len(by_category) == 1 else 'ies'}" if not category else "") + "."]  # fmt: skip
    if not category and by_category:
        lines.append("By category: " + ", ".join(f"{name} {n}" for name, n in by_category.items()) + ".")
    models = counts["listings_by_pricing_model"]
    if models:
        lines.append("By pricing: " + ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in models.items()) + ".")
    regions = counts["listings_by_region"]
    if regions:
        lines.append("By region: " + ", ".join(f"{name} {n}" for name, n in regions.items()) + ".")
    if agents is not None:
        statuses = ", ".join(f"{status} {n}" for status, n in agents["by_status"].items())
        lines.append(f"Registered agents you can see: {agents['total_agents']}" + (f" ({statuses})." if statuses else "."))
    else:
        lines.append(f"Registered agents you can see{where}: {counts['agents']}.")
    return "\n".join(lines)


def started(name: str, created: dict[str, Any]) -> str:
    return (f"Started an instance of {name}: {created['instance_id']}, {created['status']} on node {created['node']}, "
            f"running as agent {created['instance_agent_name']}.")  # fmt: skip


def registered(created: dict[str, Any]) -> str:
    capabilities = ", ".join(created["agent"].get("capabilities") or []) or "no capabilities"
    token = " Its token is in the data, shown this once." if created.get("agent_token") else ""
    return f"Agent {created['agent_name']} {created['status']} as {created['agent_id']}, with {capabilities}.{token}"


HELP = (
    "I can find agents and listings by what you need (“a French translator under a cent a request in Europe”), give "
    "the details of one (“tell me about WhisperWorks”), count what the marketplace holds (“how many translation "
    "listings are there?”), start an instance of a listing (“start an instance of WhisperWorks”) and register an "
    "agent (“register an agent named MyBot that can do text analysis”)."
)


def _short(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
