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
from affiliates.models import AdjustmentKind, AdjustmentStatus
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
        payment_intent_ids=_payment_intents_of(invoice),
    )
    services.record_commission(invoice=paid, actor=STRIPE_WEBHOOK)


@on_stripe_event("charge.refunded")
def on_charge_refunded(*, event: stripe.Event) -> None:
    """Full or partial: charge.amount_refunded is cumulative, so each event carries the total so far."""
    charge = _object(event)
    charge_id = str(_required(charge, "id", event))
    facts = services.StripeAdjustmentFacts(
        kind=AdjustmentKind.REFUND,
        object_id=charge_id,
        charge_id=charge_id,
        payment_intent_id=_id_of(charge.get("payment_intent")) or "",
        invoice_id=_invoice_of(charge),
        amount=int(_required(charge, "amount_refunded", event)),
        charge_amount=int(_required(charge, "amount", event)),
        currency=str(_required(charge, "currency", event)),
        status=AdjustmentStatus.REFUNDED,
    )
    services.record_stripe_adjustment(facts=facts, actor=STRIPE_WEBHOOK, reason=f"{event.type} {event.id}")


@on_stripe_event("charge.dispute.created", "charge.dispute.closed")
def on_charge_dispute(*, event: stripe.Event) -> None:
    """created: the commission is held (not approvable); closed: lost -> reversed in full, won
    (or warning_closed: no chargeback) -> released."""
    dispute = _object(event)
    status = str(dispute.get("status") or "")
    if event.type == "charge.dispute.created":
        outcome = AdjustmentStatus.OPEN
    else:
        outcome = AdjustmentStatus.LOST if status == "lost" else AdjustmentStatus.WON
    charge = dispute.get("charge")
    facts = services.StripeAdjustmentFacts(
        kind=AdjustmentKind.DISPUTE,
        object_id=str(_required(dispute, "id", event)),
        charge_id=_id_of(charge) or "",
        payment_intent_id=_id_of(dispute.get("payment_intent")) or "",
        invoice_id=_invoice_of(charge) if isinstance(charge, dict) else "",
        amount=int(_required(dispute, "amount", event)),
        charge_amount=0,
        currency=str(_required(dispute, "currency", event)),
        status=outcome,
    )
    services.record_stripe_adjustment(facts=facts, actor=STRIPE_WEBHOOK, reason=f"{event.type} {event.id}")


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


def _invoice_of(charge: dict[str, Any]) -> str:
    """The charge's invoice on API versions before 2025-03-31 (the field is gone since): "" if absent."""
    return _id_of(charge.get("invoice")) or ""


def _payment_intents_of(invoice: dict[str, Any]) -> tuple[str, ...]:
    """The payment intents in an invoice's `payments` (API 2025-03-31+, when expanded into the payload)."""
    payments = invoice.get("payments")
    data = payments.get("data") if isinstance(payments, dict) else None
    found = [_id_of((item.get("payment") or {}).get("payment_intent")) for item in data or [] if isinstance(item, dict)]
    return tuple(pi for pi in found if pi)


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
