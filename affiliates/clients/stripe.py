"""The affiliate domain's one read at Stripe: which invoice a payment intent paid.

From API version 2025-03-31 (basil) a Charge no longer carries `invoice` (nor an Invoice its
`charge` / `payment_intent`): the link is the InvoicePayment, listed with
`GET /v1/invoice_payments?payment[type]=payment_intent&payment[payment_intent]=pi_...`
(Stripe's documented way). Called from a task, never inside a transaction. HTTP only: nothing
about our models.
"""

from functools import lru_cache
from typing import Any

import stripe
from django.conf import settings

MAX_NETWORK_RETRIES = 2


def invoice_for_payment_intent(payment_intent_id: str) -> str | None:
    """The id of the invoice the payment intent paid, or None if it paid no invoice.

    Raises stripe.StripeError when Stripe cannot answer (the caller's sweeper tries again)."""
    params: Any = {"payment": {"type": "payment_intent", "payment_intent": payment_intent_id}, "limit": 1}
    page = _client(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE, settings.STRIPE_TIMEOUT_SECONDS)
    found = page.v1.invoice_payments.list(params).data
    if not found:
        return None
    invoice = found[0].invoice
    return invoice if isinstance(invoice, str) else invoice.id


@lru_cache(maxsize=8)
def _client(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=MAX_NETWORK_RETRIES,
        http_client=stripe.RequestsClient(timeout=timeout),
    )
