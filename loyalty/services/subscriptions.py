"""The subscription mirror, written by `customer.subscription.created/updated/deleted`.

Runs inside the webhook's event-claim transaction (webhooks.stripe_events), so a replayed event is a
no-op before it gets here. Safety for the rest:
- UNIQUE stripe_subscription_id: two first deliveries for one subscription create one row (the
  loser's IntegrityError, inside a nested atomic, turns into an update).
- Deliveries are unordered: every write is `filter(..., last_event_at <= event.created).update()`,
  so an older event arriving late changes nothing (PostgreSQL re-checks the WHERE after waiting
  on a concurrent writer).
- A subscription that ended (deleted, or updated to canceled) has its live discounts revoked
  through the guarded transition; the codes are deactivated at Stripe on commit.
"""

from dataclasses import dataclass
from datetime import datetime

import structlog
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.db.models import Case, F, Value, When

from audit.beacons import emit_beacon
from core.actors import Actor
from core.transactions import atomic
from loyalty.models import PRO_PLAN, Subscription, SubscriptionStatus
from loyalty.services.revocations import revoke_live_discounts

logger = structlog.get_logger(__name__)
ENDED = {SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED}


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """What one Stripe event says about a subscription (parsed in loyalty.webhooks)."""

    stripe_subscription_id: str
    stripe_customer_id: str
    status: str
    plan: str
    # When Pro began if this is the first event we see of the subscription: its start_date for a
    # `created` event; for any other, the event's own time (an earlier Basic period is unknown
    # to us, and a discount must never come early).
    pro_since: datetime
    event_created: datetime
    user_id: int | None = None  # metadata.user_id, set by our checkout
    deleted: bool = False


def sync_subscription(*, snapshot: SubscriptionSnapshot, actor: Actor) -> Subscription | None:
    """Mirror one event; revoke the live discounts of a subscription that ended.
    None when the event cannot be matched to a user (a beacon says so) or is older than the row."""
    existing = Subscription.objects.filter(stripe_subscription_id=snapshot.stripe_subscription_id).first()
    user_id = _resolve_user(snapshot, existing)
    if user_id is None:
        if snapshot.plan == PRO_PLAN:  # a Pro subscriber we could never reward: someone must look
            emit_beacon(
                "loyalty_subscription_unmatched",
                subscription=snapshot.stripe_subscription_id,
                customer=snapshot.stripe_customer_id,
            )
        logger.info("loyalty_subscription_unmatched", subscription=snapshot.stripe_subscription_id)
        return None
    subscription = None if existing else _create(snapshot, user_id)
    if subscription is None:
        subscription = _update_if_newer(snapshot)
    if subscription is not None and subscription.status in ENDED:
        revoked = revoke_live_discounts(
            subscription=subscription, actor=actor, reason=f"subscription {snapshot.status}"
        )
        logger.info("loyalty_subscription_ended", subscription=subscription.stripe_subscription_id, revoked=revoked)
    return subscription


def _status(snapshot: SubscriptionSnapshot) -> str:
    # `deleted` is final at Stripe whatever order the events arrive in.
    return SubscriptionStatus.CANCELED if snapshot.deleted else snapshot.status


def _create(snapshot: SubscriptionSnapshot, user_id: int) -> Subscription | None:
    try:
        with atomic():
            return Subscription.objects.create(
                user_id=user_id,
                stripe_customer_id=snapshot.stripe_customer_id,
                stripe_subscription_id=snapshot.stripe_subscription_id,
                plan=snapshot.plan,
                status=_status(snapshot),
                pro_started_at=snapshot.pro_since if snapshot.plan == PRO_PLAN else None,
                last_event_at=snapshot.event_created,
            )
    except IntegrityError:
        return None  # a concurrent delivery created it first: update it instead


def _update_if_newer(snapshot: SubscriptionSnapshot) -> Subscription | None:
    if snapshot.plan == PRO_PLAN:
        # Computed in SQL on the row version the UPDATE finally writes: a Pro period continues,
        # an upgrade to Pro starts one at this event.
        pro_started_at: Case | Value = Case(
            When(plan=PRO_PLAN, pro_started_at__isnull=False, then=F("pro_started_at")),
            default=Value(snapshot.event_created),
        )
    else:
        pro_started_at = Value(None)
    rows = Subscription.objects.filter(stripe_subscription_id=snapshot.stripe_subscription_id)
    changed = rows.filter(last_event_at__lte=snapshot.event_created).update(
        stripe_customer_id=snapshot.stripe_customer_id,
        plan=snapshot.plan,
        status=_status(snapshot),
        pro_started_at=pro_started_at,
        last_event_at=snapshot.event_created,
    )
    if not changed and not snapshot.deleted:
        logger.info("loyalty_subscription_event_stale", subscription=snapshot.stripe_subscription_id)
        return None
    if not changed:  # a late `deleted`: the subscription ended whatever newer events said
        rows.update(status=SubscriptionStatus.CANCELED)
    return rows.get()


def _resolve_user(snapshot: SubscriptionSnapshot, existing: Subscription | None) -> int | None:
    if snapshot.user_id is not None and get_user_model().objects.filter(pk=snapshot.user_id).exists():
        return snapshot.user_id
    if existing is not None:
        return existing.user_id
    known = Subscription.objects.filter(stripe_customer_id=snapshot.stripe_customer_id).order_by("-pk").first()
    return known.user_id if known else None
