"""``agora marketplace …``, ``agora instance …`` and ``agora dashboard``: seed 003's customer workflow from a terminal
(discover, create, details, execute, pause, resume, terminate, dashboard), and publishing a listing."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import EXIT_ERROR, err_console, fail, table

market_app = typer.Typer(help="The marketplace: discover and publish agents, see hosting nodes.", no_args_is_help=True)
instance_app = typer.Typer(help="Your instances of marketplace agents: create, inspect, pause, resume, terminate, execute.", no_args_is_help=True)
dashboard_app = typer.Typer()

InstanceId = Annotated[str, typer.Argument(help="The instance id (inst_…).")]


def _money(cost: dict[str, Any]) -> str:
    return f"{cost['total_cost']} {cost['currency']}"


def _price(pricing: dict[str, Any]) -> str:
    if pricing["model"] == "hybrid":
        return f"{pricing['base_fee']}/h + {pricing['price']}/request {pricing['currency']}"
    if pricing["model"] == "per_unit":
        units = " + ".join(f"{u['price']}/{u['per']} {name}" for name, u in pricing["units"].items())
        return f"{pricing['price']}/request + {units} {pricing['currency']}"
    unit = {"per_request": "request", "per_minute": "minute", "per_hour": "hour"}[pricing["model"]]
    return f"{pricing['price']}/{unit} {pricing['currency']}"


@hub_command(market_app, "discover")
def discover(
    hub: Hub,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    text: Annotated[str | None, typer.Option(help="Words to find in the name, description or capabilities.")] = None,
    min_rating: Annotated[float | None, typer.Option(help="Only listings rated at least this (1 to 5).")] = None,
    min_reputation: Annotated[float | None, typer.Option(help="Only listings of at least this reputation (0 to 100).")] = None,
    sort: Annotated[str, typer.Option(help="name, rating or reputation (best first).")] = "name",
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """Listed agents, with price, rating, availability and measured performance."""
    result = hub.call(
        "agora.marketplace.discover", category=category, text=text, min_rating=min_rating, min_reputation=min_reputation, sort=sort, limit=limit
    )

    def rows() -> list[list[Any]]:
        out = []
        for a in result["agents"]:
            info = a["marketplace_info"]
            perf, avail = info["performance_metrics"], info["availability"]
            success = "—" if perf["success_rate"] is None else f"{perf['success_rate']:.0%}"
            out.append([a["listing_id"], a["agent_name"], a["category"], _price(info["pricing_info"]), f"{a['rating']:.2f} ({a['rating_count']})", f"{a['reputation']:.1f}",
                        f"{avail['current_instances']}/{avail['max_instances']}", info["customer_instances"], success])  # fmt: skip
        return out

    columns = ["listing", "name", "category", "price", "rating", "reputation", "running", "yours", "success"]
    hub.show(result, lambda r: table(f"{r['total']} listed agent(s)", columns, rows()))


@hub_command(market_app, "publish")
def publish(hub: Hub, listing: Annotated[Path, typer.Argument(help="A listing JSON file (see examples/marketplace_agent/listing.json).")]) -> None:
    """List an agent (publishing a name again makes its next version). A relative repository path is taken from the
    file's directory."""
    try:
        body = json.loads(listing.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise fail(f"cannot read {listing}: {exc}") from None
    url = body.get("repository", {}).get("url", "")
    if url and "://" not in url and not url.startswith(("/", "git@")):
        local = (listing.parent / url).resolve()
        body["repository"]["url"] = str(local if local.exists() else (Path.cwd() / url).resolve())
    result = hub.call("agora.marketplace.publish", **body)
    hub.show(result, lambda r: typer.echo(f"published {r['agent_name']} v{r['version']} as {r['listing_id']}"))


@hub_command(market_app, "unlist")
def unlist(hub: Hub, listing: Annotated[str, typer.Argument(help="Listing id or name.")]) -> None:
    """Take a listing off the marketplace (refused while it has live instances)."""
    result = hub.call("agora.marketplace.unlist", listing=listing)
    hub.show(result, lambda r: typer.echo(f"{r['listing_id']} is {r['status']}"))


@hub_command(market_app, "nodes")
def nodes(hub: Hub) -> None:
    """Hosting nodes: online or not, region, capacity and what their instances hold."""
    result = hub.call("agora.hosting.list_nodes")
    rows = [[n["name"], n["status"], n["region"], f"{n['used_cpu']:g}/{n['capacity_cpu']:g}",
             f"{n['used_memory_mb']}/{n['capacity_memory_mb']}", n["instances"], ", ".join(n["runtimes"])] for n in result["nodes"]]  # fmt: skip
    hub.show(result, lambda r: table(f"{len(rows)} hosting node(s)", ["node", "status", "region", "cpu", "memory MB", "instances", "runtimes"], rows))


def _env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise fail(f"--env takes NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


@hub_command(instance_app, "create")
def create(
    hub: Hub,
    listing: Annotated[str, typer.Argument(help="The listing (id or name) to run.")],
    memory_limit: Annotated[int | None, typer.Option(help="MB (default: the listing's minimum).")] = None,
    cpu_limit: Annotated[float | None, typer.Option(help="Cores (default: the listing's minimum).")] = None,
    env: Annotated[list[str], typer.Option(help="NAME=VALUE for the instance's environment; repeat for more.")] = [],  # noqa: B006 - typer reads it
    co_locate_with: Annotated[str | None, typer.Option(help="Place it on the same node as this agent's instance.")] = None,
    region: Annotated[str | None, typer.Option(help="Prefer nodes of this region.")] = None,
) -> None:
    """Start your own instance of a listed agent."""
    config = {k: v for k, v in {"memory_limit": memory_limit, "cpu_limit": cpu_limit, "env": _env(env)}.items() if v}
    co_location = {"with_agent": co_locate_with} if co_locate_with else None
    result = hub.call("agora.marketplace.create_instance", agent_id=listing, instance_config=config, co_location=co_location, preferred_region=region)
    hub.show(result, lambda r: typer.echo(f"{r['instance_id']} {r['status']} on node {r['node']} as agent {r['instance_agent_name']}"))


@hub_command(instance_app, "list")
def list_instances(hub: Hub, status: Annotated[str | None, typer.Option(help="starting, running, paused, stopping, stopped or failed.")] = None) -> None:
    """Your instances, newest first, with uptime and cost so far."""
    result = hub.call("agora.marketplace.list_instances", status=status)
    rows = [[i["instance_id"], i["agent_name"], i["status"], i["node"], f"{i['uptime_seconds']:.0f}s", i["tasks_executed"], _money(i["billing_info"]["cost"])]
            for i in result["instances"]]  # fmt: skip
    hub.show(result, lambda r: table(f"{len(rows)} instance(s)", ["instance", "agent", "status", "node", "uptime", "tasks", "cost"], rows))


@hub_command(instance_app, "details")
def details(hub: Hub, instance_id: InstanceId) -> None:
    """Everything about one instance: state, node, resources, health, bill, last output."""
    hub.show(hub.call("agora.marketplace.get_instance", instance_id=instance_id), _print_instance)


def _print_instance(i: dict[str, Any]) -> None:
    usage, health, bill = i["resource_usage"], i["health_status"], i["billing_info"]
    cost = bill["cost"]
    lines = [
        f"{i['instance_id']}  {i['agent_name']} v{i['listing_version']}  [{i['status']}]  node {i['node']}",
        f"agent      {i['instance_agent_name']} ({i['instance_agent_id']})",
        f"uptime     {i['uptime_seconds']:.1f}s   restarts {i['restarts']}   tasks executed {i['tasks_executed']}",
        f"resources  cpu {usage['cpu_percent'] if usage['cpu_percent'] is not None else '—'}%   memory {usage['memory_mb'] or '—'} MB",
        f"health     {'healthy' if health['healthy'] else 'not healthy'}   errors {health['error_count']}   {health['last_error'] or ''}",
        f"bill       base {cost['base_cost']} + usage {cost['usage_cost']} + tasks {cost['task_cost']} = {_money(cost)}"
        + ("  (final)" if bill["final"] else ""),
    ]
    if isolation := i.get("isolation"):
        user = f"uid {isolation['uid']}" if isolation["uid"] is not None else "the node's user"
        lines.append(f"isolation  sandbox {isolation['sandbox']}, {user}, memory: {isolation['memory']}, cpu: {isolation['cpu']}")
    typer.echo("\n".join(lines + [f"  | {line}" for line in i["last_output"]]))


@hub_command(instance_app, "pause")
def pause(hub: Hub, instance_id: InstanceId) -> None:
    """Stop its processes, its work and its bill until you resume it."""
    hub.show(hub.call("agora.marketplace.pause_instance", instance_id=instance_id), lambda r: typer.echo(f"{r['instance_id']} {r['status']}"))


@hub_command(instance_app, "resume")
def resume(hub: Hub, instance_id: InstanceId) -> None:
    """Let a paused instance run again."""
    hub.show(hub.call("agora.marketplace.resume_instance", instance_id=instance_id), lambda r: typer.echo(f"{r['instance_id']} {r['status']}"))


@hub_command(instance_app, "terminate")
def terminate(
    hub: Hub,
    instance_id: InstanceId,
    grace: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
    wait: Annotated[bool, typer.Option(help="Wait until its node has stopped it, then print the final bill.")] = True,
) -> None:
    """Stop an instance for good and print its final bill (--no-wait: as soon as the hub has taken the order)."""
    result = hub.call("agora.marketplace.terminate_instance", instance_id=instance_id, grace_seconds=grace)
    if wait and result["status"] == "stopping":
        result = _until_stopped(hub, instance_id, deadline=time.monotonic() + grace + TERMINATE_MARGIN)
    hub.show(result, _print_instance)
    if wait and result["status"] == "stopping":
        raise fail(f"{instance_id} is still stopping after {grace + TERMINATE_MARGIN:g} s; 'agora instance details' shows when it has", EXIT_ERROR)


TERMINATE_MARGIN = 30.0  # seconds past the grace period to wait for the node's word


def _until_stopped(hub: Hub, instance_id: str, deadline: float) -> dict[str, Any]:
    """Poll the instance until it is no longer stopping (or the deadline passes), with a spinner on stderr."""
    with err_console.status(f"waiting for {instance_id} to stop…"):
        while True:
            got = hub.call("agora.marketplace.get_instance", instance_id=instance_id)
            if got["status"] != "stopping" or time.monotonic() >= deadline:
                return got
            time.sleep(0.25)


@hub_command(instance_app, "execute")
def execute(
    hub: Hub,
    instance_id: InstanceId,
    endpoint: Annotated[str, typer.Argument(help="The task type the instance handles.")],
    params: Annotated[str, typer.Option(help="The task's parameters, as a JSON object.")] = "{}",
    timeout: Annotated[float, typer.Option(help="Seconds to wait; then the task is cancelled.")] = 30.0,
) -> None:
    """Run one task on an instance and print its result."""
    try:
        parameters = json.loads(params)
    except json.JSONDecodeError as exc:
        raise fail(f"--params is not JSON: {exc}") from None
    result = hub.call("agora.marketplace.execute", instance_id=instance_id, endpoint=endpoint, parameters=parameters, timeout=timeout)
    hub.show(result, lambda r: typer.echo(json.dumps(r["result"]) if r["status"] == "completed" else f"{r['status']}: {r['error']}"))


def dashboard(hub: Hub) -> None:
    """Your marketplace summary: instances, uptime and cost."""
    result = hub.call("agora.marketplace.dashboard")

    def human(r: dict[str, Any]) -> None:
        typer.echo(
            f"{r['total_instances']} instance(s): {r['running_instances']} running, {r['paused_instances']} paused   "
            f"uptime {r['total_uptime_hours']:.2f} h   this month {r['current_month_cost']} {r['currency']}   "
            f"in all {r['total_cost']} {r['currency']}"
        )
        rows = [[i["instance_id"], i["agent_name"], i["status"], i["created_at"][:19], i["total_cost"]] for i in r["recent_instances"]]
        table("recent instances", ["instance", "agent", "status", "created", "cost"], rows)

    hub.show(result, human)


hub_command(dashboard_app, "dashboard")(dashboard)
