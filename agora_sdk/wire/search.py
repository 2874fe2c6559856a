"""Search (``agora.marketplace.search``): agents, marketplace listings and catalog tools ranked by relevance to what
a person typed, with structured filters, and the reasons each result matched."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field

from .common import Cursor, Input, Output, UtcDatetime
from .marketplace import Language, MarketplaceInfo, Money, PricingModel
from .tasks import Capability

Query = Annotated[str, Field(min_length=1, max_length=500, description="What is wanted, as a person says it.")]


class SearchKind(StrEnum):
    agent = "agent"  # the caller's tenant's registered agents
    listing = "listing"  # marketplace listings
    service = "service"  # the hub's own tools


class SearchMode(StrEnum):
    auto = "auto"  # hybrid when an embedder is configured, else lexical
    lexical = "lexical"  # the database's full text only
    semantic = "semantic"  # vectors only (needs an embedder)
    hybrid = "hybrid"  # both, fused by reciprocal rank (needs an embedder)


class SearchSort(StrEnum):
    relevance = "relevance"
    rating = "rating"  # listings only, best rated first
    reputation = "reputation"  # listings only, best reputed first


class Search(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("q",)

    q: Query
    kinds: list[SearchKind] = Field(
        default_factory=lambda: [SearchKind.listing, SearchKind.agent], min_length=1, description="What to find (the hub's tools: service)."
    )
    category: str | None = Field(None, min_length=1, max_length=64)
    capabilities: list[Capability] = Field(default_factory=list, max_length=20, description="Every one of them.")
    max_price: Money | None = Field(None, description="Unit price at most this (listings and priced agents only).")
    pricing_models: list[PricingModel] = Field(default_factory=list, description="Any of these pricing models.")
    region: str | None = Field(None, min_length=1, max_length=64, description="A region ('eu-west'), or a prefix ending in '-' ('eu-').")
    languages: list[Language] = Field(default_factory=list, max_length=10, description="Works in any of these languages.")
    min_success_rate: float | None = Field(None, ge=0, le=1, description="Listings whose measured success rate is at least this.")
    min_rating: float | None = Field(None, ge=1, le=5, description="Listings whose (Bayesian) rating is at least this.")
    min_reputation: float | None = Field(None, ge=0, le=100, description="Listings whose reputation is at least this.")
    sort: SearchSort = Field(SearchSort.relevance, description="relevance, or best rated / best reputed first (relevance breaks ties).")
    interpret: bool = Field(
        True, description="Read constraints said in words in q ('under a cent a request', 'in Europe', 'from French') as filters and preferences."
    )
    mode: SearchMode = SearchMode.auto
    limit: int = Field(10, ge=1, le=100)
    cursor: Cursor | None = None


class Span(Output):
    start: int
    end: int


class Highlight(Output):
    field: str = Field(description="name, tags or description.")
    text: str = Field(description="The field (the description: its best fragment), plain text.")
    spans: list[Span] = Field(description="Where the matched words are in text (character offsets, end exclusive).")


class Why(Output):
    """Why a result is where it is."""

    matched_fields: list[str] = Field(description="Fields whose words matched the query (name, tags, description).")
    highlights: list[Highlight]
    lexical_rank: int | None = Field(description="Its place among full-text matches (1: best), if it matched.")
    semantic_rank: int | None = Field(description="Its place among the nearest in meaning (1: nearest), if searched.")
    similarity: float | None = Field(description="Cosine similarity of its text to the query's, if searched.")
    adjustments: list[str] = Field(description="What moved it after ranking: language or region preferences, measured performance.")


class PriceSummary(Output):
    model: str | None
    price: Decimal | None
    currency: str | None


class SearchHit(Output):
    kind: SearchKind
    id: str = Field(description="agent_id, listing_id or the tool's name.")
    name: str
    description: str
    category: str | None
    tags: list[str] = Field(description="Capabilities and category.")
    pricing: PriceSummary | None
    region: str | None
    languages: list[str]
    score: float = Field(description="Relevance after fusion and adjustments (only comparable within one search).")
    why: Why
    status: str | None = Field(None, description="An agent's status.")
    last_heartbeat: UtcDatetime | None = None
    marketplace_info: MarketplaceInfo | None = Field(None, description="A listing's availability, pricing and measured performance.")


class Interpretation(Output):
    """How the query was read."""

    words: list[str] = Field(description="The words matched (after constraints were taken out).")
    corrections: dict[str, str] = Field(description="Words the index does not hold, and the indexed term used instead.")
    understood: list[str] = Field(description="Phrases read as constraints.")
    max_price: Money | None
    pricing_models: list[str]
    regions: list[str] = Field(description="Preferred regions (a filter when given as region).")
    languages: list[str] = Field(description="Preferred languages (a filter when given as languages).")
    min_success_rate: float | None
    min_rating: float | None = None
    sort: SearchSort = SearchSort.relevance


class SearchResults(Output):
    query: str
    mode: SearchMode = Field(description="How this search ranked: lexical, semantic or hybrid.")
    semantic: str = Field(description="Whether vectors took part, and if not, why.")
    interpretation: Interpretation
    results: list[SearchHit]
    next_cursor: str | None = None
    embedding_ms: float | None = Field(
        None, description="Time spent embedding the query, if it was (0 when its vector was kept from an earlier search)."
    )
