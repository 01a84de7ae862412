"""Stripe's `customer.subscription.*` events: each one makes us read the subscription at Stripe,
and that read (never the event's own copy, which may be older than another event's) is mirrored.

The signature check, the event-id claim and the transaction are the shared pipeline's
(webhooks.stripe_events). The read is its `read_first` step: it runs before the claim's transaction
opens, and if Stripe cannot answer, the delivery fails (503) and Stripe redelivers it later.
"""

from datetime import UTC, datetime
from typing import Any

import stripe

from core.actors import SystemActor
from loyalty.models import PRO_PLAN
from loyalty.services.subscriptions import SubscriptionSnapshot, read_subscription, sync_subscription
from webhooks.stripe_events import on_stripe_event

WEBHOOK_ACTOR = SystemActor("webhook:stripe")
CREATED = "customer.subscription.created"


def read_event_subscription(*, event: stripe.Event) -> SubscriptionSnapshot:
    """The subscription the event names, as Stripe reports it now (outside any transaction)."""
    obj: dict[str, Any] = event.data.object.to_dict()
    return read_subscription(
        stripe_subscription_id=str(obj["id"]),
        stripe_event_id=event.id,
        event_created=datetime.fromtimestamp(int(event.created), tz=UTC),
        # A `created` event's copy is the subscription at its creation: a fact of history, used
        # only to know whether it began as Pro (then Pro counts from its start_date).
        created_as_pro=event.type == CREATED and _plan(obj) == PRO_PLAN,
    )


@on_stripe_event(
    CREATED, "customer.subscription.updated", "customer.subscription.deleted", read_first=read_event_subscription
)
def mirror_subscription(*, event: stripe.Event, read: SubscriptionSnapshot) -> None:
    sync_subscription(snapshot=read, actor=WEBHOOK_ACTOR)


def _plan(obj: dict[str, Any]) -> str:
    """metadata.plan if our checkout set it, else the first item's price lookup key (or id)."""
    if (obj.get("metadata") or {}).get("plan"):
        return str(obj["metadata"]["plan"])
    items = (obj.get("items") or {}).get("data") or []
    price = (items[0].get("price") or {}) if items else {}
    return str(price.get("lookup_key") or price.get("id") or "")
