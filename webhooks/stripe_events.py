"""The one Stripe webhook pipeline: signature check, event-id claim, then the domain handlers.

Domain apps register handlers by event type in their AppConfig.ready():

    @on_stripe_event("invoice.paid")
    def record_commission(*, event: stripe.Event) -> None: ...

Handlers run inside the transaction that claimed the event id, so a handler that fails rolls the
claim back and Stripe's redelivery is processed again; a replay of a processed event is a no-op.
"""

from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum

import stripe
import structlog
from django.conf import settings

from core.errors import ValidationError
from core.transactions import atomic
from webhooks.errors import WebhookErrorCode
from webhooks.events import claim_webhook_event

logger = structlog.get_logger(__name__)
StripeHandler = Callable[..., None]
_handlers: dict[str, list[StripeHandler]] = defaultdict(list)


class StripeEventOutcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


def on_stripe_event(*event_types: str) -> Callable[[StripeHandler], StripeHandler]:
    def register(handler: StripeHandler) -> StripeHandler:
        for event_type in event_types:
            if handler not in _handlers[event_type]:
                _handlers[event_type].append(handler)
        return handler

    return register


def verify_stripe_event(*, payload: bytes, signature: str | None) -> stripe.Event:
    """Verifies Stripe-Signature on the raw body (timestamp tolerance included) with the SDK."""
    if not signature:
        raise ValidationError("Missing Stripe-Signature header.", code=WebhookErrorCode.INVALID_SIGNATURE)
    try:
        return stripe.Webhook.construct_event(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise ValidationError(
            f"Stripe signature rejected: {exc.user_message or exc}", code=WebhookErrorCode.INVALID_SIGNATURE
        ) from exc
    except ValueError as exc:
        raise ValidationError(
            "The webhook body is not a Stripe event.", code=WebhookErrorCode.INVALID_PAYLOAD
        ) from exc


def handle_stripe_event(*, event: stripe.Event) -> StripeEventOutcome:
    handlers = _handlers.get(event.type, [])
    with atomic():
        if not claim_webhook_event(provider="stripe", event_id=event.id, event_type=event.type):
            logger.info("stripe_event_duplicate", event_id=event.id, event_type=event.type)
            return StripeEventOutcome.DUPLICATE
        for handler in handlers:
            handler(event=event)
    return StripeEventOutcome.PROCESSED if handlers else StripeEventOutcome.IGNORED
