"""The one Stripe webhook pipeline: signature check, event-id claim, then the domain handlers.

Domain apps register handlers by event type in their AppConfig.ready():

    @on_stripe_event("invoice.paid")
    def record_commission(*, event: stripe.Event) -> None: ...

Handlers run inside the transaction that claimed the event id, so a handler that fails rolls the
claim back and Stripe's redelivery is processed again; a replay of a processed event is a no-op.

A handler that must read the object at Stripe first (Stripe does not deliver events in order, and
its documented remedy is to "use the API to fetch any missing objects",
https://docs.stripe.com/webhooks#event-ordering) registers a reader:

    @on_stripe_event("customer.subscription.updated", read_first=read_event_subscription)
    def mirror_subscription(*, event: stripe.Event, read: SubscriptionSnapshot) -> None: ...

The reader runs before the claim's transaction opens (no transaction is held across an HTTP call)
and its result reaches the handler as `read=`. If Stripe cannot answer, the delivery fails with
503 before anything is claimed, and Stripe redelivers it later (live mode retries for up to three
days): the handler never falls back to the payload's possibly stale copy.
"""

from collections import defaultdict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import stripe
import structlog
from django.conf import settings

from core.errors import DomainError, ValidationError
from core.published_defaults import is_published
from core.stripe_client import StripeError
from core.transactions import atomic
from webhooks.errors import WebhookErrorCode
from webhooks.events import claim_webhook_event
from webhooks.models import WebhookEvent

logger = structlog.get_logger(__name__)
StripeHandler = Callable[..., None]
StripeReader = Callable[..., Any]
_handlers: dict[str, list[StripeHandler]] = defaultdict(list)
_readers: dict[StripeHandler, StripeReader] = {}


class StripeEventOutcome(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


class StripeReadFailed(DomainError):
    """A handler's read at Stripe failed: answered 503 so that Stripe redelivers the event."""

    status_code = 503
    default_code = WebhookErrorCode.PROVIDER_UNAVAILABLE


def on_stripe_event(
    *event_types: str, read_first: StripeReader | None = None
) -> Callable[[StripeHandler], StripeHandler]:
    def register(handler: StripeHandler) -> StripeHandler:
        for event_type in event_types:
            if handler not in _handlers[event_type]:
                _handlers[event_type].append(handler)
        if read_first is not None:
            _readers[handler] = read_first
        return handler

    return register


def verify_stripe_event(*, payload: bytes, signature: str | None) -> stripe.Event:
    """Verifies Stripe-Signature on the raw body (timestamp tolerance included) with the SDK.

    A secret this repository publishes (the demo's whsec_sandbox) proves nothing: anyone can sign with
    it. Start-up refuses it outside the demo; this refuses every delivery too, should DEBUG have been
    switched off after that check."""
    if not signature:
        raise ValidationError("Missing Stripe-Signature header.", code=WebhookErrorCode.INVALID_SIGNATURE)
    if is_published(settings.STRIPE_WEBHOOK_SECRET) and not settings.ALLOW_PUBLISHED_DEFAULTS:
        logger.error("stripe_webhook_secret_published")
        raise ValidationError(
            "STRIPE_WEBHOOK_SECRET is a published sandbox value: no delivery signed with it is trusted.",
            code=WebhookErrorCode.INVALID_SIGNATURE,
        )
    try:
        return stripe.Webhook.construct_event(
            payload, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE
        )
    except stripe.SignatureVerificationError as exc:
        raise ValidationError(
            f"Stripe signature rejected: {exc.user_message or exc}", code=WebhookErrorCode.INVALID_SIGNATURE
        ) from exc
    except ValueError as exc:
        raise ValidationError("The webhook body is not a Stripe event.", code=WebhookErrorCode.INVALID_PAYLOAD) from exc


def handle_stripe_event(*, event: stripe.Event) -> StripeEventOutcome:
    handlers = _handlers.get(event.type, [])
    reads = _read_first(event, handlers)
    if reads is None:
        return _duplicate(event)
    with atomic():
        if not claim_webhook_event(provider="stripe", event_id=event.id, event_type=event.type):
            return _duplicate(event)
        for handler in handlers:
            if handler in reads:
                handler(event=event, read=reads[handler])
            else:
                handler(event=event)
    return StripeEventOutcome.PROCESSED if handlers else StripeEventOutcome.IGNORED


def _read_first(event: stripe.Event, handlers: list[StripeHandler]) -> dict[StripeHandler, Any] | None:
    """The readers' results, read outside any transaction; None for an event already processed
    (a replay costs no provider call). A concurrent first delivery still reads, then loses the claim."""
    readers = [handler for handler in handlers if handler in _readers]
    if not readers:
        return {}
    if WebhookEvent.objects.filter(provider="stripe", event_id=event.id).exists():
        return None
    try:
        return {handler: _readers[handler](event=event) for handler in readers}
    except StripeError as exc:
        logger.warning("stripe_event_read_failed", event_id=event.id, event_type=event.type, error=exc.describe())
        raise StripeReadFailed(
            f"Could not read the object of {event.type} {event.id} at Stripe; redeliver later.",
            provider_error=exc.describe(),
        ) from exc


def _duplicate(event: stripe.Event) -> StripeEventOutcome:
    logger.info("stripe_event_duplicate", event_id=event.id, event_type=event.type)
    return StripeEventOutcome.DUPLICATE
