"""The affiliate domain's one read at Stripe: which invoice a payment intent paid.

From API version 2025-03-31 (basil) a Charge no longer carries `invoice` (nor an Invoice its
`charge` / `payment_intent`): the link is the InvoicePayment, listed with
`GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_...`
(Stripe's documented way). Called from a task, never inside a transaction. HTTP only: nothing
about our models. The SDK client and the error translation are core.stripe_client's.
"""

from typing import Any

from core.stripe_client import sdk_client, translated_errors


def invoice_for_payment_intent(payment_intent_id: str) -> str | None:
    """The id of the invoice the payment intent paid, or None if it paid no invoice.

    Raises core.stripe_client.StripeError (StripeUnavailable or StripeRefused) when Stripe cannot
    answer; the caller's sweeper tries again."""
    params: Any = {"payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": 1}
    with translated_errors():
        found = sdk_client().v1.invoice_payments.list(params).data
    if not found:
        return None
    invoice = found[0].invoice
    return invoice if isinstance(invoice, str) else invoice.id
