"""The storefront's reviews: a listing's rating and reviews on its page, and the form a verified buyer rates it with
(``agora.reviews.write``; the catalog says who may)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from agora_sdk.errors import AgoraError, InvalidArgument

from .door import View, page

STARS = ("1", "2", "3", "4", "5")


@page
async def write_review(view: View) -> Response:
    """Rate the listing: the review, shown at once, or the catalog's refusal (not a verified buyer, already reviewed)."""
    form = await view.request.form()
    rating = str(form.get("rating") or "")
    try:
        if rating not in STARS:
            raise InvalidArgument("choose 1 to 5 stars", details={"field": "rating"})
        await view.call(
            "agora.reviews.write", listing=view.request.path_params["listing_id"], rating=int(rating),
            title=str(form.get("title") or "").strip(), text=str(form.get("text") or "").strip(),
        )  # fmt: skip
    except AgoraError as exc:
        return view.render("_result.html", exc.status, ok=False, message=exc.message)
    return view.render("_result.html", ok=True, message="Thank you: your review is published.")


ROUTES: list[BaseRoute] = [Route("/ui/marketplace/{listing_id}/reviews", write_review, methods=["POST"])]
