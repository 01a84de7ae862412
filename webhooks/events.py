"""The generic provider-event dedupe: one UNIQUE (provider, event id) row per delivery.

Every provider's webhook (Stripe's pipeline here, Wise's settlement in payouts) claims the event id
inside the transaction that applies it: a replay finds the row and does nothing, and a failure
rolls the claim back with the work, so the provider's redelivery is processed again.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from webhooks.models import WebhookEvent


def claim_webhook_event(*, provider: str, event_id: str, event_type: str) -> bool:
    """A concurrent duplicate waits on the UNIQUE index for the first delivery's commit, then loses."""
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                provider=provider, event_id=event_id, event_type=event_type, received_at=timezone.now()
            )
    except IntegrityError:
        return False
    return True
