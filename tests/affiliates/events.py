"""Stripe event bodies for the affiliate handlers (signed and posted with tests.stripe_signing)."""

from typing import Any

from tests.stripe_signing import stripe_event


def invoice_paid(
    event_id: str, *, invoice_id: str, customer: str | dict, amount_paid: int = 400_000, currency: str = "usd"
) -> dict[str, Any]:
    return stripe_event(
        event_id,
        "invoice.paid",
        {
            "id": invoice_id,
            "object": "invoice",
            "customer": customer,
            "amount_paid": amount_paid,
            "currency": currency,
            "status": "paid",
        },
    )


def charge_refunded(
    event_id: str,
    *,
    invoice_id: str | None,
    refunded: bool = True,
    amount: int = 400_000,
    amount_refunded: int | None = None,
    currency: str = "usd",
    charge_id: str | None = None,
    payment_intent: str | None = None,
    new_api: bool = False,
) -> dict[str, Any]:
    """A charge after a refund. `amount_refunded` is cumulative (Stripe's field). new_api: the
    payload of API versions from 2025-03-31, where a Charge has no `invoice` field."""
    if amount_refunded is None:
        amount_refunded = amount if refunded else 1_000
    charge: dict[str, Any] = {
        "id": charge_id or f"ch_{event_id}",
        "object": "charge",
        "amount": amount,
        "amount_refunded": amount_refunded,
        "refunded": amount_refunded >= amount,
        "currency": currency,
        "payment_intent": payment_intent,
    }
    if not new_api:
        charge["invoice"] = invoice_id
    return stripe_event(event_id, "charge.refunded", charge)


def charge_dispute(
    event_id: str,
    *,
    dispute_id: str,
    charge: str | dict,
    payment_intent: str | None,
    closed_as: str | None = None,
    amount: int = 400_000,
    currency: str = "usd",
) -> dict[str, Any]:
    """charge.dispute.created (closed_as None) or charge.dispute.closed with status won / lost."""
    event_type = "charge.dispute.created" if closed_as is None else "charge.dispute.closed"
    dispute = {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "currency": currency,
        "charge": charge,
        "payment_intent": payment_intent,
        "status": closed_as or "needs_response",
    }
    return stripe_event(event_id, event_type, dispute)


def invoice_voided(event_id: str, *, invoice_id: str, customer: str) -> dict[str, Any]:
    return stripe_event(
        event_id, "invoice.voided", {"id": invoice_id, "object": "invoice", "customer": customer, "status": "void"}
    )


def subscription_updated(event_id: str, *, customer: str) -> dict[str, Any]:
    return stripe_event(
        event_id,
        "customer.subscription.updated",
        {
            "id": f"sub_{customer}",
            "object": "subscription",
            "customer": customer,
            "status": "active",
            "created": 1_700_000_000,
            "start_date": 1_700_000_000,
            "cancel_at_period_end": False,
            "metadata": {},
            "items": {"object": "list", "data": []},
        },
    )
