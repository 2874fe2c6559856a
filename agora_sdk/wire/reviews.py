"""Ratings and reviews of marketplace listings (``agora.reviews.*``), written only by verified buyers.

A listing's ``rating`` is a Bayesian average, ``(C·m + Σ ratings) / (C + n)`` with the prior ``m = 3`` (the middle of
the scale) weighed as ``C = 5`` ratings: a listing needs several reviews before its own average outweighs the prior,
so one 5-star review does not rank above forty 4.8s.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import Field, field_validator

from .common import INT32_MAX, Cursor, Input, Limit, Listing, Output, UtcDatetime, id_pattern

PRIOR_MEAN = 3
PRIOR_WEIGHT = 5
ReviewId = Annotated[str, Field(pattern=id_pattern("rev"), description="The review's id.")]
ListingRef = Annotated[str, Field(min_length=1, max_length=100, description="Listing id, or a listed listing's name.")]
# Text is shown as text (never HTML); control characters other than line breaks and tabs are refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")


def _plain(value: str | None) -> str | None:
    if value is not None and _CONTROL.search(value):
        raise ValueError("control characters (other than line breaks and tabs) and direction overrides are not allowed")
    return value


class ReviewStatus(StrEnum):
    published = "published"
    withdrawn = "withdrawn"  # by its author; writing again publishes it anew
    hidden = "hidden"  # by the hub's administrator, with a reason (kept, and in the audit log)


class WriteReview(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("listing", "rating")

    listing: ListingRef
    rating: int = Field(ge=1, le=5)
    title: str = Field("", max_length=200)
    text: str = Field("", max_length=4000)
    listing_version: int | None = Field(None, ge=1, le=INT32_MAX, description="The version reviewed (default: the one the caller's latest instance ran).")

    _checked = field_validator("title", "text")(_plain)


class EditReview(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("review_id",)

    review_id: ReviewId
    rating: int | None = Field(None, ge=1, le=5)
    title: str | None = Field(None, max_length=200)
    text: str | None = Field(None, max_length=4000)

    _checked = field_validator("title", "text")(_plain)


class ReviewRef(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("review_id",)

    review_id: ReviewId


class RespondToReview(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("review_id", "text")

    review_id: ReviewId
    text: str = Field(min_length=1, max_length=4000, description="The publisher's answer (one per review; writing again replaces it).")

    _checked = field_validator("text")(_plain)


class HideReview(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("review_id", "reason")

    review_id: ReviewId
    reason: str = Field(min_length=1, max_length=500, description="Why (kept with the review and in the audit log).")
    hidden: bool = Field(True, description="False shows it again.")

    _checked = field_validator("reason")(_plain)


class ListReviews(Input):
    positional_args: ClassVar[tuple[str, ...]] = ("listing",)

    listing: ListingRef
    limit: Limit = 50
    cursor: Cursor | None = None


class Response(Output):
    text: str
    at: UtcDatetime


class Review(Output):
    review_id: str
    listing_id: str
    rating: int
    title: str
    text: str
    listing_version: int
    status: ReviewStatus
    verified_buyer: bool = Field(True, description="Always: only a tenant that ran the listing may review it.")
    yours: bool = Field(description="Written by the caller's tenant.")
    edited: bool
    hidden_reason: str | None = Field(None, description="Shown to the hub's administrator and the review's author.")
    response: Response | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class RatingSummary(Output):
    rating: float = Field(description=f"Bayesian average: (C·m + Σ ratings) / (C + n), m = {PRIOR_MEAN}, C = {PRIOR_WEIGHT}.")
    rating_count: int
    average: float | None = Field(description="The plain mean of the ratings (null: none yet).")
    distribution: dict[str, int] = Field(description="How many ratings of each star, '1' to '5'.")


class ReviewList(Listing):
    items_field: ClassVar[str] = "reviews"
    listing_id: str
    summary: RatingSummary
    reviews: list[Review]
    next_cursor: str | None = None


def bayesian(total: int, count: int) -> float:
    """The listing's rating from the sum and number of its published ratings."""
    return round((PRIOR_WEIGHT * PRIOR_MEAN + total) / (PRIOR_WEIGHT + count), 4)
