"""agora.marketplace.*, agora.hosting.*, agora.billing.*: listings, hosting nodes, customer instances and their bills."""

from dataclasses import replace
from datetime import date

from agora.core.auth import Scope
from agora.chat import turn
from agora.core.services import billing, catalog_stats, hosting, instances, marketplace, search
from agora_sdk.wire import chat as cw
from agora_sdk.wire import marketplace as w
from agora_sdk.wire import search as sw
from agora_sdk.wire.common import Empty

from ..tool import Tool

READ = frozenset({Scope.marketplace_read.value})
WRITE = frozenset({Scope.marketplace_write.value})
CREATE = frozenset({Scope.instances_write.value})  # an instance is billed: a developer's (or admin's) decision
CONTROL = frozenset({Scope.instances_control.value})  # an operator's intervention
BILLING = frozenset({Scope.billing_read.value})
HOSTING = frozenset({Scope.hosting.value})
ADDED = date(2026, 11, 23)
CONSOLE = date(2026, 11, 25)  # what the console's storefront and billing pages needed
SEARCH = date(2026, 11, 26)
CHAT = date(2026, 11, 26)

TOOLS = [
    Tool(
        name="agora.marketplace.publish",
        version="1.0.0",
        description=(
            "List an agent on the marketplace: description, category, repository and build_config (python, npm, custom; "
            "docker only on nodes with a container runtime), host_requirements, pricing (per_request, per_minute, per_hour "
            "or hybrid) and max_instances. Publishing a name again makes its next version."
        ),
        input_model=w.PublishListing,
        output_model=w.MarketplaceListing,
        handler=marketplace.publish,
        scopes=WRITE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.discover",
        version="1.0.0",
        description=(
            "Listed agents by category and words, each with marketplace_info: availability, pricing, the caller's "
            "instances, total instances and performance (response time, success rate, availability) measured from its "
            "instances' tasks and uptime. A page at a time: next_cursor, when set, gives the next."
        ),
        input_model=w.Discover,
        output_model=w.ListingList,
        handler=marketplace.discover,
        scopes=READ,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.search",
        version="1.0.0",
        description=(
            "Find agents, marketplace listings and the hub's tools by saying what is needed: ranked by full-text "
            "relevance (and meaning, when the hub has an embedder), with filters (category, capabilities, price ceiling, "
            "pricing model, region, languages, minimum success rate) and constraints read from the words ('under a cent "
            "a request', 'from French', 'in Europe'); listings are re-ranked by their measured performance. Each result "
            "says why it matched: the fields, the matched words, its ranks. A page at a time (next_cursor)."
        ),
        input_model=sw.Search,
        output_model=sw.SearchResults,
        handler=search.search,
        scopes=READ,
        read_only=True,
        last_updated=SEARCH,
    ),
    Tool(
        name="agora.marketplace.chat",
        version="1.0.0",
        description=(
            "Ask the marketplace in words (seed 001's chat): find agents by need with filters, the details of one, "
            "statistics, start an instance of a listing, register an agent. Answers with response, data (every tool "
            "result the answer rests on) and tools_used; the tools are the catalog's own, called as the caller, and a "
            "change is made only when the message itself asks for it. With conversation_id, 'the second one' and 'it' "
            "mean earlier results. Planned by the hub's LLM when one is configured (--llm-url), else (or when it fails, "
            "with a notice) by the deterministic planner. With Accept: text/event-stream, tool calls and text stream as "
            "they happen."
        ),
        input_model=cw.Chat,
        output_model=cw.ChatAnswer,
        handler=turn.chat,
        scopes=READ,
        new_work=False,  # the tools it calls decide whether a halted hub refuses them
        streams_events=True,
        last_updated=CHAT,
    ),
    Tool(
        name="agora.marketplace.stats",
        version="1.0.0",
        description=(
            "How many listings and registered agents the caller can find, and the listings by category, pricing model "
            "and region (optionally within one category): the marketplace statistics of the chat."
        ),
        input_model=cw.CatalogStatsQuery,
        output_model=cw.CatalogStats,
        handler=catalog_stats.stats,
        scopes=READ,
        read_only=True,
        last_updated=CHAT,
    ),
    Tool(
        name="agora.marketplace.get_listing",
        version="1.0.0",
        description=(
            "One listing (id, or name) with its marketplace_info as discover gives it: a listed one, or one the caller "
            "published or has run (the admin sees every one)."
        ),
        input_model=w.ListingRef,
        output_model=w.MarketplaceListing,
        handler=marketplace.get_listing,
        scopes=READ,
        read_only=True,
        last_updated=CONSOLE,
    ),
    Tool(
        name="agora.marketplace.unlist",
        version="1.0.0",
        description=(
            "Take one of the caller's listings off the marketplace; refused (409, naming them) while it has live instances. "
            "Its history stays."
        ),
        input_model=w.ListingRef,
        output_model=w.Unlisted,
        handler=marketplace.unlist,
        scopes=WRITE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.create_instance",
        version="1.0.0",
        description=(
            "Run a listed agent as the caller's own instance: placed on a hosting node with room for it (its region first; "
            "beside another instance with co_location), started in its own directory and process group, joining the hub as "
            "an agent of the caller's tenant. 409 with the reason when no node can take it."
        ),
        input_model=w.CreateInstance,
        output_model=w.InstanceCreated,
        handler=instances.create,
        scopes=CREATE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.deploy",
        version="1.0.0",
        description=(
            "Seed 001's deploy flow: create an instance (optionally co-located with an agent's instance) and answer the "
            "requester (reply_to, or the calling agent) with a deploy_confirm message (address, node, co_located) or a "
            "deploy_failure message giving the reason."
        ),
        input_model=w.Deploy,
        output_model=w.Deployed,
        handler=instances.deploy,
        scopes=CREATE,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.list_instances",
        version="1.0.0",
        description=(
            "The caller's instances, newest first, a page at a time (next_cursor): status, node, uptime, resource usage, "
            "health and bill."
        ),
        input_model=w.ListInstances,
        output_model=w.InstanceList,
        handler=instances.list_instances,
        scopes=READ,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.get_instance",
        version="1.0.0",
        description=(
            "One instance: status, node, uptime, CPU and memory as the node measured them, tasks executed, health, last "
            "output lines and bill."
        ),
        input_model=w.InstanceRefInput,
        output_model=w.Instance,
        handler=instances.get,
        scopes=READ,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.pause_instance",
        version="1.0.0",
        description=(
            "Pause a running instance: its processes are stopped (SIGSTOP), nothing is routed to its agent and billing "
            "stops at once."
        ),
        input_model=w.InstanceRefInput,
        output_model=w.Instance,
        handler=instances.pause,
        scopes=CONTROL,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.resume_instance",
        version="1.0.0",
        description="Resume a paused instance: its processes continue, its agent takes work and billing runs again.",
        input_model=w.InstanceRefInput,
        output_model=w.Instance,
        handler=instances.resume,
        scopes=CONTROL,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.terminate_instance",
        version="1.0.0",
        description=(
            "Stop an instance for good: its node sends SIGTERM, then SIGKILL after grace_seconds. Billing ends now. Answers at "
            "once (202) with the instance 'stopping'; it is 'stopped', with its final bill, when the node has confirmed. "
            "Asking again while it stops changes nothing."
        ),
        input_model=w.Terminate,
        output_model=w.Instance,
        handler=instances.terminate,
        scopes=CONTROL,
        answers_accepted=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.execute",
        version="1.0.0",
        description=(
            "Run one task (its type is the endpoint) on an instance and wait for the result; past the timeout the task is "
            "cancelled and the call fails with 504."
        ),
        input_model=w.Execute,
        output_model=w.Executed,
        handler=instances.execute,
        scopes=CONTROL,
        long_running=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.marketplace.dashboard",
        version="1.0.0",
        description=(
            "The caller's marketplace summary: instances (total, running, paused), total and this month's cost, uptime "
            "hours, recent instances."
        ),
        input_model=Empty,
        output_model=w.Dashboard,
        handler=billing.dashboard,
        scopes=READ,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.billing.invoice",
        version="1.0.0",
        description=(
            "A customer's bill for one month (default: this one): a line per instance with its running time, requests and "
            "cost breakdown. The admin may name any customer."
        ),
        input_model=w.InvoiceRequest,
        output_model=w.Invoice,
        handler=billing.invoice,
        scopes=BILLING,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.billing.usage",
        version="1.0.0",
        description=(
            "A customer's usage month by month (default: the last 12, ending this month): instances billed, running time, "
            "requests and cost, each month as its invoice totals it. The admin may name any customer."
        ),
        input_model=w.UsageRequest,
        output_model=w.UsageSeries,
        handler=billing.usage_series,
        scopes=BILLING,
        read_only=True,
        last_updated=CONSOLE,
    ),
    Tool(
        name="agora.hosting.register_node",
        version="1.0.0",
        description=(
            "Admin: register a hosting node (name, region, CPU and memory it offers, runtimes it has). Answers with the "
            "node agent's key, which the node takes its instance operations with."
        ),
        input_model=w.NodeRegistration,
        output_model=w.NodeRegistered,
        handler=hosting.register_node,
        scopes=HOSTING,
        admin_only=True,
        new_work=False,  # an operator may add hosting capacity during a halt, as it may manage keys
        last_updated=ADDED,
    ),
    Tool(
        name="agora.hosting.list_nodes",
        version="1.0.0",
        description="Every hosting node: online or not, capacity, what its live instances hold.",
        input_model=Empty,
        output_model=w.NodeList,
        handler=hosting.list_nodes,
        scopes=READ,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.hosting.assigned",
        version="1.0.0",
        description="For a hosting node: the live instances placed on it (status and what to run), to run them again after a restart.",
        input_model=w.AssignedRequest,
        output_model=w.Assignments,
        handler=hosting.assigned,
        scopes=HOSTING,
        read_only=True,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.hosting.credentials",
        version="1.0.0",
        description=(
            "For the node starting an instance: a new key for the instance's agent (its earlier keys are revoked) and the "
            "environment it starts with."
        ),
        input_model=w.InstanceRefInput,
        output_model=w.InstanceCredentials,
        handler=hosting.credentials,
        scopes=HOSTING,
        last_updated=ADDED,
    ),
    Tool(
        name="agora.hosting.report",
        version="1.0.0",
        description=(
            "For a hosting node: an instance reached a state (running, stopped, failed), crashed and is being restarted, or "
            "was sampled (CPU, memory)."
        ),
        input_model=w.NodeReport,
        output_model=Empty,
        handler=hosting.report,
        scopes=HOSTING,
        new_work=False,
        last_updated=ADDED,
    ),
]
# A listing, the instances other tenants run of it and the nodes that host them span tenants: each tool checks who may
# see and change what itself (Tool.crosses_tenants).
TOOLS = [replace(tool, crosses_tenants=True) for tool in TOOLS]
