"""Stripe's `customer.subscription.*` events, parsed and handed to the subscription service.

The signature check, the event-id claim and the transaction are the shared pipeline's
(webhooks.stripe_events); this module only turns a stripe.Event into a SubscriptionSnapshot.
"""

from datetime import UTC, datetime
from typing import Any

import stripe

from core.actors import SystemActor
from loyalty.services.subscriptions import SubscriptionSnapshot, sync_subscription
from webhooks.stripe_events import on_stripe_event

WEBHOOK_ACTOR = SystemActor("webhook:stripe")


@on_stripe_event("customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted")
def mirror_subscription(*, event: stripe.Event) -> None:
    sync_subscription(snapshot=subscription_snapshot(event), actor=WEBHOOK_ACTOR)


def subscription_snapshot(event: stripe.Event) -> SubscriptionSnapshot:
    obj: dict[str, Any] = event.data.object.to_dict()
    metadata = obj.get("metadata") or {}
    customer = obj.get("customer")
    return SubscriptionSnapshot(
        stripe_subscription_id=obj["id"],
        stripe_customer_id=customer["id"] if isinstance(customer, dict) else str(customer),
        status=obj["status"],
        plan=_plan(obj),
        pro_since=_at(obj.get("start_date") or event.created)
        if event.type == "customer.subscription.created"
        else _at(event.created),
        event_created=_at(event.created),
        user_id=_int_or_none(metadata.get("user_id")),
        deleted=event.type == "customer.subscription.deleted",
    )


def _plan(obj: dict[str, Any]) -> str:
    """metadata.plan if our checkout set it, else the first item's price lookup key (or id)."""
    if (obj.get("metadata") or {}).get("plan"):
        return str(obj["metadata"]["plan"])
    items = (obj.get("items") or {}).get("data") or []
    price = (items[0].get("price") or {}) if items else {}
    return str(price.get("lookup_key") or price.get("id") or "")


def _at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(int(timestamp), tz=UTC)


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
