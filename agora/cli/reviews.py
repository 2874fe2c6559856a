"""``agora reviews ls|write|edit|withdraw|respond|hide``: ratings and reviews of marketplace listings."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .connection import Hub, hub_command
from .output import table

app = typer.Typer(help="Ratings and reviews of marketplace listings (verified buyers write them).", no_args_is_help=True)

ReviewId = Annotated[str, typer.Argument(help="The review id (rev_…).")]
Stars = Annotated[int, typer.Argument(help="1 to 5.", min=1, max=5)]


def _said(review: dict[str, Any]) -> str:
    return f"{review['review_id']}: {'★' * review['rating']}{'☆' * (5 - review['rating'])} ({review['status']})"


@hub_command(app, "ls")
def list_reviews(
    hub: Hub,
    listing: Annotated[str, typer.Argument(help="Listing id or name.")],
    limit: Annotated[int, typer.Option(help="How many to show.")] = 50,
) -> None:
    """A listing's reviews, newest first, with its rating."""
    result = hub.call("agora.reviews.list", listing=listing, limit=limit)

    def show(r: dict[str, Any]) -> None:
        s = r["summary"]
        average = "—" if s["average"] is None else f"{s['average']:.2f}"
        typer.echo(f"rating {s['rating']:.2f} (Bayesian) from {s['rating_count']} rating(s), mean {average}; "
                   + " ".join(f"{star}★ {n}" for star, n in s["distribution"].items()))  # fmt: skip
        rows = [[v["review_id"], v["rating"], v["title"], v["text"][:60], v["status"], "yes" if v["response"] else ""] for v in r["reviews"]]
        table("reviews", ["review", "stars", "title", "text", "status", "answered"], rows)

    hub.show(result, show)


@hub_command(app, "write")
def write(
    hub: Hub,
    listing: Annotated[str, typer.Argument(help="Listing id or name.")],
    rating: Stars,
    title: Annotated[str, typer.Option(help="A headline.")] = "",
    text: Annotated[str, typer.Option(help="What you found (at most 4,000 characters).")] = "",
) -> None:
    """Rate a listing your tenant ran (once; edit it afterwards)."""
    hub.show(hub.call("agora.reviews.write", listing=listing, rating=rating, title=title, text=text), lambda r: typer.echo(_said(r)))


@hub_command(app, "edit")
def edit(
    hub: Hub,
    review_id: ReviewId,
    rating: Annotated[int | None, typer.Option(help="1 to 5.", min=1, max=5)] = None,
    title: Annotated[str | None, typer.Option(help="A new headline.")] = None,
    text: Annotated[str | None, typer.Option(help="New text.")] = None,
) -> None:
    """Change your tenant's review (the earlier wording is kept)."""
    hub.show(hub.call("agora.reviews.edit", review_id=review_id, rating=rating, title=title, text=text), lambda r: typer.echo(_said(r)))


@hub_command(app, "withdraw")
def withdraw(hub: Hub, review_id: ReviewId) -> None:
    """Take your tenant's review back."""
    hub.show(hub.call("agora.reviews.withdraw", review_id=review_id), lambda r: typer.echo(_said(r)))


@hub_command(app, "respond")
def respond(hub: Hub, review_id: ReviewId, text: Annotated[str, typer.Argument(help="Your answer, as the listing's publisher.")]) -> None:
    """Answer a review of your listing (again: replace the answer)."""
    hub.show(hub.call("agora.reviews.respond", review_id=review_id, text=text), lambda r: typer.echo(f"{_said(r)} answered"))


@hub_command(app, "hide")
def hide(
    hub: Hub,
    review_id: ReviewId,
    reason: Annotated[str, typer.Argument(help="Why (kept with it and in the audit log).")],
    show: Annotated[bool, typer.Option("--show", help="Show a hidden review again.")] = False,
) -> None:
    """Hide a review from the marketplace (the hub's administrator)."""
    hub.show(hub.call("agora.reviews.hide", review_id=review_id, reason=reason, hidden=not show), lambda r: typer.echo(_said(r)))
