"""agora.reviews.*: ratings and reviews of marketplace listings by verified buyers, the publisher's answers, and the
hub administrator's moderation."""

from datetime import date
from typing import Any

from agora.core.auth import Scope
from agora.core.services import reviews
from agora_sdk.wire import reviews as w

from ..tool import Tool

READ = frozenset({Scope.marketplace_read.value})
WRITE = frozenset({Scope.marketplace_write.value})
# A review is another tenant's row, and each changes the publisher's listing (its rating): Tool.crosses_tenants.
COMMON: dict[str, Any] = {"version": "1.0.0", "last_updated": date(2026, 11, 28), "crosses_tenants": True}

TOOLS = [
    Tool(
        name="agora.reviews.write",
        description=(
            "Rate a listing 1-5, with an optional title and text (at most 4,000 characters): once per tenant and "
            "listing, only by a verified buyer (an instance of it completed an execution or ran ten minutes)."
        ),
        input_model=w.WriteReview,
        output_model=w.Review,
        handler=reviews.write,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.reviews.edit",
        description="Change the caller's tenant's review (its earlier wording is kept in its history).",
        input_model=w.EditReview,
        output_model=w.Review,
        handler=reviews.edit,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.reviews.withdraw",
        description="Take the caller's tenant's review back (its rating no longer counts; writing again publishes it anew).",
        input_model=w.ReviewRef,
        output_model=w.Review,
        handler=reviews.withdraw,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.reviews.list",
        description="A listing's reviews, newest first, with its rating (Bayesian), count and distribution.",
        input_model=w.ListReviews,
        output_model=w.ReviewList,
        handler=reviews.list_reviews,
        scopes=READ,
        read_only=True,
        **COMMON,
    ),
    Tool(
        name="agora.reviews.respond",
        description="The publisher's answer to a review of its listing (one per review; writing again replaces it).",
        input_model=w.RespondToReview,
        output_model=w.Review,
        handler=reviews.respond,
        scopes=WRITE,
        **COMMON,
    ),
    Tool(
        name="agora.reviews.hide",
        description="Hide a review (or show it again), with the reason: it is kept, with the reason on record, and no longer counts.",
        input_model=w.HideReview,
        output_model=w.Review,
        handler=reviews.hide,
        admin_only=True,
        new_work=False,  # moderation goes on during an emergency halt
        **COMMON,
    ),
]
