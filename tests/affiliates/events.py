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


def charge_refunded(event_id: str, *, invoice_id: str | None, refunded: bool = True) -> dict[str, Any]:
    return stripe_event(
        event_id,
        "charge.refunded",
        {
            "id": f"ch_{event_id}",
            "object": "charge",
            "invoice": invoice_id,
            "amount": 400_000,
            "amount_refunded": 400_000 if refunded else 1_000,
            "refunded": refunded,
        },
    )


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
