"""Stripe events for the affiliate domain: parse the event object, hand over to a service.

The signature check, the event-id claim and the transaction are webhooks.stripe_events' job; these
handlers run inside that transaction, so a failure rolls the claim back and Stripe's redelivery
is processed again.
"""

from typing import Any

import stripe
import structlog

from affiliates import services
from affiliates.errors import AffiliateErrorCode
from core.actors import SystemActor
from core.errors import ValidationError
from webhooks.stripe_events import on_stripe_event

logger = structlog.get_logger(__name__)
STRIPE_WEBHOOK = SystemActor("webhook:stripe")


@on_stripe_event("invoice.paid")
def on_invoice_paid(*, event: stripe.Event) -> None:
    invoice = _object(event)
    customer_id = _id_of(invoice.get("customer"))
    if customer_id is None:
        logger.info("invoice_without_customer", event_id=event.id)
        return
    paid = services.PaidInvoice(
        event_id=event.id,
        invoice_id=_required(invoice, "id", event),
        customer_id=customer_id,
        amount_paid=int(_required(invoice, "amount_paid", event)),
        currency=str(_required(invoice, "currency", event)),
    )
    services.record_commission(invoice=paid, actor=STRIPE_WEBHOOK)


@on_stripe_event("charge.refunded")
def on_charge_refunded(*, event: stripe.Event) -> None:
    charge = _object(event)
    invoice_id = _id_of(charge.get("invoice"))
    if invoice_id is None:
        logger.info("refund_without_invoice", event_id=event.id, charge=charge.get("id"))
        return
    if not charge.get("refunded"):
        # A partial refund: the commission stays as recorded; a full refund (refunded=true) reverses it.
        logger.warning("partial_refund_left_commission", event_id=event.id, invoice=invoice_id)
        return
    services.reverse_invoice_commission(
        stripe_invoice_id=invoice_id, actor=STRIPE_WEBHOOK, reason=f"charge.refunded {event.id}"
    )


@on_stripe_event("invoice.voided")
def on_invoice_voided(*, event: stripe.Event) -> None:
    invoice_id = _required(_object(event), "id", event)
    services.reverse_invoice_commission(
        stripe_invoice_id=invoice_id, actor=STRIPE_WEBHOOK, reason=f"invoice.voided {event.id}"
    )


@on_stripe_event("customer.subscription.updated")
def on_subscription_updated(*, event: stripe.Event) -> None:
    customer_id = _id_of(_object(event).get("customer"))
    if customer_id is not None:
        services.request_tier_evaluation(stripe_customer_id=customer_id, cause=f"{event.type} {event.id}")


def _object(event: stripe.Event) -> dict[str, Any]:
    try:
        return event.data.object.to_dict()
    except AttributeError as exc:
        raise ValidationError(
            f"Stripe event {event.id} has no data.object.", code=AffiliateErrorCode.INVALID_STRIPE_PAYLOAD
        ) from exc


def _id_of(value: object) -> str | None:
    """Stripe sends a related object as its id, or as the object itself when expanded."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _required(obj: dict[str, Any], key: str, event: stripe.Event) -> Any:
    if obj.get(key) in (None, ""):
        raise ValidationError(
            f"Stripe event {event.id} ({event.type}) lacks data.object.{key}.",
            code=AffiliateErrorCode.INVALID_STRIPE_PAYLOAD,
        )
    return obj[key]
