"""The marketplace (``agora.marketplace.*``, ``agora.hosting.*``, ``agora.billing.*``): listings, hosting nodes,
customer instances that run on them, and what those instances cost.

Money is ``Decimal`` everywhere (a JSON string on the wire), never a float.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, model_validator

from .common import INT32_MAX, Input, JSONObject, JSONValue, Listing, MaskedEnv, Output, RedactedUrl, UtcDatetime
from .tasks import Capability

Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]
Language = Annotated[str, Field(pattern=r"^[a-z]{2,3}$", description="An ISO 639-1 (or 639-3) language code, lowercase.")]
EnvVars = Annotated[
    dict[str, str],
    Field(default_factory=dict, max_length=100, description="Write-only: the process gets them; reads show the names only."),
]
InstanceRef = Annotated[str, Field(min_length=1, max_length=64, description="The instance id.")]
Month = Annotated[
    str, Field(pattern=r"^(19[7-9]\d|[2-8]\d{3})-(0[1-9]|1[0-2])$", description="YYYY-MM (UTC), from 1970-01 to 8999-12.")
]


class BuildType(StrEnum):
    python = "python"
    npm = "npm"
    custom = "custom"
    docker = "docker"  # placed only on nodes that have a container runtime


class Repository(Input):
    url: str = Field(min_length=1, max_length=2000, description="A git URL, or a directory on the hosting node.")
    branch: str | None = Field(None, max_length=200)


class BuildConfig(Input):
    type: BuildType = BuildType.python
    build_command: str | None = Field(None, max_length=4000, description="Run once per listing version on each node.")
    start_command: str = Field(min_length=1, max_length=4000, description="Starts one instance, in its own directory.")
    env_vars: EnvVars


class ShownRepository(Repository):
    url: RedactedUrl = Field(description="Credentials in the URL (user:token@) read back as '********'.")


class ShownBuildConfig(BuildConfig):
    """A listing's build_config as a read shows it: env_vars are write-only (names only)."""

    env_vars: MaskedEnv


class HostRequirements(Input):
    min_memory_mb: int = Field(128, ge=1, le=1_048_576)
    min_cpu_cores: float = Field(0.1, gt=0, le=1024)
    preferred_region: str | None = Field(None, max_length=64)
    co_location_required: bool = Field(False, description="Every instance must be placed with the agent deploy names.")


class PricingModel(StrEnum):
    per_request = "per_request"
    per_minute = "per_minute"
    per_hour = "per_hour"
    hybrid = "hybrid"  # base_fee per running hour + price per request
    per_unit = "per_unit"  # named units the instance reports (e.g. tokens), priced per ``per`` of them, + price per request


UnitName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$", description="e.g. input_tokens")]
UnitCount = Annotated[int, Field(ge=0, le=10**15)]


class UnitPrice(Input):
    price: Money = Field(description="The price of ``per`` units.")
    per: int = Field(1000, ge=1, le=10**9, description="How many units the price is for (e.g. 1,000 tokens).")
    max_per_call: int | None = Field(
        None, ge=1, le=10**15, description="The most one report may count; more is refused as absurd (null: no limit)."
    )


class Pricing(Input):
    model: PricingModel = PricingModel.per_request
    price: Money = Field(Decimal(0), description="Per request, minute or hour; per request for hybrid and per_unit.")
    base_fee: Money = Field(Decimal(0), description="hybrid: per running hour.")
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    units: dict[UnitName, UnitPrice] = Field(
        default_factory=dict, max_length=20, description="per_unit only: the units an instance reports, and their prices."
    )

    @model_validator(mode="after")
    def _units_only_per_unit(self) -> Pricing:
        if (self.model is PricingModel.per_unit) != bool(self.units):
            raise ValueError("per_unit pricing names its units, and only per_unit pricing has units")
        return self


class PublishListing(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("agent_name",)

    agent_name: Name = Field(description="The listing's name; publishing it again makes its next version.")
    description: str = Field("", max_length=4000)
    category: str = Field("general", min_length=1, max_length=64)
    capabilities: list[Capability] = Field(default_factory=list, max_length=50)
    repository: Repository
    build_config: BuildConfig
    host_requirements: HostRequirements = Field(default_factory=HostRequirements)
    pricing: Pricing = Field(default_factory=Pricing)
    max_instances: int = Field(10, ge=1, le=10_000)
    languages: list[Language] = Field(default_factory=list, max_length=30, description="Languages the agent works in.")


class ListingRef(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("listing",)

    listing: str = Field(min_length=1, max_length=100, description="Listing id, or the name of one of the caller's listings.")


class Availability(Output):
    available: bool
    max_instances: int
    current_instances: int


class PerformanceMetrics(Output):
    """From the instances' real task and uptime records; null until there is something to measure."""

    average_response_time: float | None = Field(description="Seconds from claim to completion, over completed tasks.")
    success_rate: float | None = Field(description="completed / (completed + failed) tasks.")
    availability: float | None = Field(description="Running time / (running + down) time of the listing's instances.")
    tasks_measured: int


class MarketplaceInfo(Output):
    availability: Availability
    pricing_info: Pricing
    customer_instances: int = Field(description="The caller's live instances of this listing.")
    total_instances: int = Field(description="Every instance ever made of this listing.")
    performance_metrics: PerformanceMetrics
    rating: float = Field(3.0, description="Its Bayesian rating (agora_sdk/wire/reviews.py).")
    rating_count: int = 0
    reputation: float = Field(70.75, description="0 to 100, from its rating and the hub's own records (core/reputation.py).")


class ReputationInputs(Output):
    """What a listing's reputation is reckoned from: its rating and the hub's own records of its instances."""

    rating: float
    completed: int = Field(0, description="Executions its instances completed.")
    failed: int = Field(0, description="Executions that failed.")
    p95_seconds: float | None = Field(None, description="95th percentile from claim to completion, last 30 days (null: none measured).")
    running_seconds: float = 0.0
    down_seconds: float = Field(0.0, description="Time its instances were down (their node away).")
    instances: int = Field(0, description="Instances buyers made of it.")
    ended_early: int = Field(0, description="Of those, stopped within their first hour.")
    reckoned_at: UtcDatetime | None = None


class MarketplaceListing(Output):
    listing_id: str
    agent_id: str = Field(description="The listing id (seed 003 calls it agent_id).")
    agent_name: str
    publisher: str
    version: int
    status: str
    description: str
    category: str
    capabilities: list[str]
    repository: ShownRepository
    build_config: ShownBuildConfig
    host_requirements: HostRequirements
    pricing: Pricing
    max_instances: int
    languages: list[str] = Field(default_factory=list)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    rating: float = Field(3.0, description="Its verified buyers' ratings as a Bayesian average (agora_sdk/wire/reviews.py): 3 with none.")
    rating_count: int = 0
    rating_distribution: list[int] = Field(default_factory=lambda: [0] * 5, description="How many ratings of 1, 2, 3, 4 and 5 stars.")
    reputation: float = Field(description="0 to 100: its rating and what the hub measured of its instances (agora/core/reputation.py).")
    reputation_inputs: ReputationInputs | None = Field(None, description="What the reputation was reckoned from (null: not yet).")
    marketplace_info: MarketplaceInfo | None = None


class DiscoverOrder(StrEnum):
    name = "name"
    rating = "rating"
    reputation = "reputation"


class Discover(Input):
    category: str | None = Field(None, max_length=64)
    text: str | None = Field(None, max_length=200, description="Words to find in the name, description or capabilities.")
    q: str | None = Field(
        None, min_length=1, max_length=500, description="What is wanted, as a person says it: listings ranked by relevance (as agora.marketplace.search ranks them)."
    )
    min_rating: float | None = Field(None, ge=1, le=5, description="Only listings rated at least this (their Bayesian rating).")
    min_reputation: float | None = Field(None, ge=0, le=100, description="Only listings of at least this reputation (0 to 100).")
    sort: DiscoverOrder = Field(DiscoverOrder.name, description="name (A to Z), rating or reputation (best first); q ranks by relevance.")
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page.")


class ListingList(Listing):
    items_field: ClassVar[str] = "agents"
    agents: list[MarketplaceListing]
    total: int
    next_cursor: str | None = Field(None, description="Set when more listings follow: pass it as cursor.")


class Unlisted(Output):
    listing_id: str
    status: str


class NodeRegistration(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("name",)

    name: Name
    region: str = Field("local", min_length=1, max_length=64)
    capacity_cpu: float = Field(gt=0, le=4096, description="CPU cores offered to instances.")
    capacity_memory_mb: int = Field(ge=64, le=16_777_216, description="Memory offered to instances.")
    runtimes: list[BuildType] = Field(default_factory=lambda: [BuildType.python, BuildType.npm, BuildType.custom])


class Node(Output):
    node_id: str
    name: str
    agent_id: str = Field(description="The node's agent: instance operations reach it as tasks.")
    region: str
    capacity_cpu: float
    capacity_memory_mb: int
    runtimes: list[str]
    status: str
    used_cpu: float = 0.0
    used_memory_mb: int = 0
    instances: int = 0
    last_heartbeat: UtcDatetime | None
    registered_at: UtcDatetime


class NodeRegistered(Output):
    node: Node
    agent_token: str = Field(description="The node agent's key (shown once); the node takes its tasks with it.")


class NodeList(Listing):
    items_field: ClassVar[str] = "nodes"
    nodes: list[Node]


class InstanceConfig(Input):
    memory_limit: int | None = Field(None, ge=16, le=1_048_576, description="MB; default: the listing's min_memory_mb.")
    cpu_limit: float | None = Field(None, gt=0, le=1024, description="Cores; default: the listing's min_cpu_cores.")
    env: EnvVars


class ShownInstanceConfig(InstanceConfig):
    """An instance's config as a read shows it: env is write-only (names only); the process gets the values."""

    env: MaskedEnv


class CoLocation(Input):
    with_agent: str = Field(min_length=1, max_length=128, description="An agent (id or name) running as an instance.")
    required: bool = True
    reason: str | None = Field(None, max_length=200)


class CreateInstance(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("agent_id",)

    agent_id: str = Field(min_length=1, max_length=100, description="The listing (id or name) to run.")
    instance_config: InstanceConfig = Field(default_factory=InstanceConfig)
    co_location: CoLocation | None = None
    preferred_region: str | None = Field(None, max_length=64)


class InstanceStatus(StrEnum):
    starting = "starting"
    running = "running"
    paused = "paused"
    stopping = "stopping"
    stopped = "stopped"
    failed = "failed"


class Health(Output):
    healthy: bool
    last_heartbeat: UtcDatetime | None
    error_count: int
    last_error: str | None


class ResourceUsage(Output):
    cpu_percent: float | None
    memory_mb: float | None
    processes: int | None
    sampled_at: UtcDatetime | None


class CostBreakdown(Output):
    base_cost: Decimal
    usage_cost: Decimal
    task_cost: Decimal
    unit_cost: Decimal = Field(Decimal(0), description="per_unit: the reported units, each report priced when accepted.")
    total_cost: Decimal
    currency: str


class BillingInfo(Output):
    pricing: Pricing
    running_seconds: float = Field(description="Billed time: running, never paused or down.")
    requests: int = Field(description="Tasks the instance completed.")
    cost: CostBreakdown
    final: bool = Field(description="True once the instance is stopped: this is its last bill.")


class Isolation(Output):
    """How its hosting node confines an instance, as the node reported when it started it."""

    sandbox: str = Field(description="'bwrap': a bubblewrap sandbox (its own directory read-write, the system read-only, nothing of the node's); 'none'.")
    uid: int | None = Field(None, ge=0, le=2**32 - 1, description="The user it runs as when the node runs as root; null: the node's own user.")
    memory: str = Field(description="How its memory limit is enforced: 'cgroup v2', 'cgroup v1', 'rlimit' (per process), 'sampled' (killed when a sample is over it) or 'none'.")
    cpu: str = Field(description="How its CPU limit is enforced: 'cgroup v2', 'cgroup v1' or 'none' (measured only).")


class Instance(Output):
    instance_id: str
    listing_id: str
    listing_version: int
    agent_name: str = Field(description="The listing's name.")
    instance_agent_id: str = Field(description="The agent the instance runs as, in the customer's tenant.")
    instance_agent_name: str
    customer: str
    status: InstanceStatus
    node: str | None
    co_located_with: str | None
    pid: int | None
    instance_config: ShownInstanceConfig
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    stopped_at: UtcDatetime | None
    uptime_seconds: float
    restarts: int
    tasks_executed: int
    resource_usage: ResourceUsage
    health_status: Health
    billing_info: BillingInfo
    last_output: list[str] = Field(default_factory=list, description="The process's last output lines (failed instances).")
    isolation: Isolation | None = Field(None, description="How its node confines it; null until the node has started it.")


class InstanceCreated(Output):
    instance_id: str
    status: InstanceStatus
    node: str
    instance_agent_id: str
    instance_agent_name: str
    co_located: bool
    instance: Instance


class Deploy(CreateInstance):
    """Seed 001's deploy request: an instance, answered by a deploy_confirm or deploy_failure message."""

    reply_to: str | None = Field(None, max_length=128, description="The agent the answer goes to; default: the calling agent.")


class Deployed(Output):
    outcome: str = Field(description="deploy_confirm or deploy_failure.")
    payload: JSONObject = Field(description="What the message carries: address, node, co_located; or the reason.")
    message_id: str | None = Field(None, description="The answer message (none when there is no agent to tell).")
    instance: InstanceCreated | None = None


class InstanceRefInput(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("instance_id",)

    instance_id: InstanceRef


class ListInstances(Input):
    status: InstanceStatus | None = None
    listing: str | None = Field(None, max_length=100)
    limit: int = Field(100, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page.")


class InstanceList(Listing):
    items_field: ClassVar[str] = "instances"
    instances: list[Instance]
    next_cursor: str | None = Field(None, description="Set when more (older) instances follow: pass it as cursor.")


class Terminate(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("instance_id",)

    instance_id: InstanceRef
    grace_seconds: float = Field(10.0, ge=0, le=600, description="SIGTERM, then SIGKILL after this long.")


class Execute(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("instance_id", "endpoint")

    instance_id: InstanceRef
    endpoint: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="The task type the instance handles.")
    parameters: JSONObject = Field(default_factory=dict)
    timeout: float = Field(30.0, gt=0, le=3600, description="Seconds to wait; then the task is cancelled.")


class Executed(Output):
    instance_id: str
    task_id: str
    status: str
    result: JSONValue = None
    error: str | None = None
    duration_seconds: float


class InstanceSummary(Output):
    instance_id: str
    agent_name: str
    status: str
    created_at: UtcDatetime
    total_cost: Decimal


class Dashboard(Output):
    total_instances: int
    running_instances: int
    paused_instances: int
    total_cost: Decimal
    total_uptime_hours: float
    current_month_cost: Decimal
    currency: str
    recent_instances: list[InstanceSummary]


class InvoiceRequest(Input):
    month: Month | None = Field(None, description="Default: the current month.")
    customer: str | None = Field(None, max_length=128, description="Admin only: the tenant to bill.")


class InvoiceLine(Output):
    instance_id: str
    agent_name: str
    pricing: Pricing
    running_seconds: float
    requests: int
    units: dict[str, int] = Field(default_factory=dict, description="per_unit: the units reported in the month.")
    cost: CostBreakdown


class Invoice(Output):
    customer: str
    month: str
    currency: str
    lines: list[InvoiceLine]
    total: Decimal
    credits_applied: Decimal = Field(Decimal(0), description="What prepaid credits paid of the month's charges so far.")
    amount_due: Decimal = Field(Decimal(0), description="total - credits_applied: what the invoice asks to be paid.")
    closed: bool = Field(description="True once the month is over.")


class UsageRequest(Input):
    months: int = Field(12, ge=1, le=120, description="How many months, ending with ``until``.")
    until: Month | None = Field(None, description="The last month of the series; default: the current month.")
    customer: str | None = Field(None, max_length=128, description="Admin only: the tenant whose usage to give.")


class MonthUsage(Output):
    month: str
    instances: int = Field(description="Instances that ran or were billed in the month.")
    running_seconds: float
    requests: int
    cost: Decimal = Field(description="The month's invoice total.")


class UsageSeries(Output):
    """A customer's usage month by month, oldest first: every month of the range, empty ones included."""

    customer: str
    currency: str
    months: list[MonthUsage]


class NodeReport(Input):
    """What a hosting node says about one of its instances."""

    positional_args: ClassVar[tuple[str, ...]] = ("instance_id",)

    instance_id: InstanceRef
    status: InstanceStatus | None = Field(None, description="A state change; unset: a sample only.")
    pid: int | None = Field(None, ge=1, le=INT32_MAX)
    restarting: bool = Field(False, description="The process crashed and the node is restarting it.")
    error: str | None = Field(None, max_length=4000)
    output_tail: list[Annotated[str, Field(max_length=2000)]] | None = Field(None, max_length=100)
    cpu_percent: float | None = Field(None, ge=0)
    memory_mb: float | None = Field(None, ge=0)
    processes: int | None = Field(None, ge=0, le=4_194_304)  # Linux's ceiling of pid_max: no instance has more
    isolation: Isolation | None = Field(None, description="How the node confines it (with the running status).")

    @model_validator(mode="after")
    def _something(self) -> NodeReport:
        if self.status is None and not self.restarting and self.memory_mb is None:
            raise ValueError("report a status, a restart or a sample")
        return self


class AssignedRequest(Input):
    node: str | None = Field(None, max_length=100, description="Admin: one node's name; unset: every node's. A node's own key lists its own.")


class Assignment(Output):
    instance_id: str
    node_id: str
    status: InstanceStatus
    spec: JSONObject = Field(description="What to run: listing name and version, repository, build_config, limits.")


class Assignments(Listing):
    """The live instances placed on the calling node: what it must be running after a restart."""

    items_field: ClassVar[str] = "instances"
    instances: list[Assignment]


class InstanceCredentials(Output):
    instance_id: str
    agent_id: str
    agent_name: str
    agent_token: str = Field(description="A new key for the instance's agent; the previous ones are revoked.")
    env: dict[str, str] = Field(description="The variables the instance process starts with (besides AGORA_*).")

