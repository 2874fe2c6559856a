"""A payment provider's webhook: Stripe's signed events grant prepaid credits (``agora.billing.grant_credits``).

The caller is the provider, proven by the event's signature (HMAC-SHA256 of ``timestamp.payload`` with the signing
secret, checked with Stripe's own library, timestamps more than five minutes away refused). A paid
``checkout.session.completed`` whose metadata names the customer (``agora_customer``: tenant id or name) grants its
``amount_total``, keyed by the event's id: an event delivered again (Stripe retries) grants nothing more. Other event
types are acknowledged and ignored.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agora.core.auth import ALL_SCOPES, Principal, PrincipalKind
from agora.core.context import Hub
from agora.core.ids import new_id
from agora_sdk.errors import AgoraError, InvalidArgument, NotFound
from agora_sdk.wire.credits import CreditGranted

from .errors import error_response

log = logging.getLogger("agora.billing.webhook")
PATH = "/billing/webhooks/stripe"
TOLERANCE_SECONDS = 300
PROVIDER = Principal(PrincipalKind.admin, "webhook:stripe", "default", ALL_SCOPES)
# Currencies Stripe counts in whole units (no cents): https://docs.stripe.com/currencies#zero-decimal
ZERO_DECIMAL = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split())
THREE_DECIMAL = frozenset("BHD JOD KWD OMR TND".split())


def mount(app: FastAPI) -> None:
    app.add_route(PATH, stripe_webhook, methods=["POST"], include_in_schema=False)


async def stripe_webhook(request: Request) -> Response:
    hub: Hub = request.app.state.hub
    try:
        return JSONResponse(await _receive(hub, request))
    except AgoraError as exc:
        return error_response(exc)


async def _receive(hub: Hub, request: Request) -> dict[str, Any]:
    secret = hub.settings.stripe_webhook_secret
    if not secret:
        raise NotFound("this hub takes no payment provider's events (--stripe-webhook-secret is not set)")
    event = _verified(await request.body(), request.headers.get("stripe-signature", ""), secret)
    if event.get("type") != "checkout.session.completed":
        return {"received": True, "ignored": event.get("type")}
    session = (event.get("data") or {}).get("object") or {}
    if session.get("payment_status") != "paid":
        return {"received": True, "ignored": "unpaid"}
    customer = (session.get("metadata") or {}).get("agora_customer")
    amount, currency = session.get("amount_total"), str(session.get("currency") or "").upper()
    if not isinstance(customer, str) or not customer or not isinstance(amount, int) or amount <= 0 or len(currency) != 3:
        raise InvalidArgument(
            "the session needs metadata.agora_customer, a positive amount_total and a currency",
            details={"event": event.get("id")},
        )
    args = {
        "customer": customer, "amount": str(_major_units(amount, currency)), "currency": currency,
        "idempotency_key": f"stripe:{event['id']}", "note": f"Stripe checkout {session.get('id', '')}"[:500],
    }  # fmt: skip
    _, granted, _ = await hub.catalog.call(hub, PROVIDER, "agora.billing.grant_credits", args, new_id("req"))
    assert isinstance(granted, CreditGranted)
    return {"received": True, "granted": args["amount"], "currency": currency, "replayed": granted.replayed}


def _verified(payload: bytes, signature: str, secret: str) -> dict[str, Any]:
    import stripe  # here, not at start-up: the library is large and only this door needs it

    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError as exc:
        log.warning("payment webhook refused: %s", exc.user_message or exc)
        raise InvalidArgument(f"the event's signature does not verify: {exc.user_message or exc}", details={"reason": "bad_signature"}) from None
    except ValueError:
        raise InvalidArgument("the event is not JSON", details={"reason": "malformed"}) from None
    found: dict[str, Any] = event.to_dict()
    if not isinstance(found.get("id"), str):
        raise InvalidArgument("the event has no id", details={"reason": "malformed"})
    return found


def _major_units(amount: int, currency: str) -> Decimal:
    """Stripe's amounts are in the currency's smallest unit."""
    places = 0 if currency in ZERO_DECIMAL else 3 if currency in THREE_DECIMAL else 2
    return Decimal(amount).scaleb(-places)
