"""The subscription mirror: what Stripe says a subscription is NOW, read at every
`customer.subscription.*` event, never the event's own copy.

Why read: Stripe "does not guarantee delivery of events in the order in which they are generated"
and documents the remedy, "use the API to fetch any missing objects"
(https://docs.stripe.com/webhooks#event-ordering). Ordering by `event.created` is not enough either:
it has one-second resolution, so an older `updated` of the same second could turn past_due back
into active.

How two reads are ordered: `read_subscription` takes a ticket (an INSERT into SubscriptionRead,
committed) before it sends the GET, and PostgreSQL hands out the ids in increasing order, so a
read that started after another's ticket was taken holds the higher ticket. A write applies only
over a lower ticket (`filter(read_ticket < mine).update()`; PostgreSQL re-checks the WHERE after
waiting on a concurrent writer). Every change at Stripe sends an event, and that event's read
starts after the change, so the highest ticket read after the last change carries the last state.
Canceled and incomplete_expired are terminal at Stripe: a read that says so applies whatever its
ticket; a subscription Stripe no longer knows (404) is mirrored as canceled.

The read runs outside any transaction (the webhook pipeline calls it before claiming the event);
sync_subscription runs inside the event-claim transaction (webhooks.stripe_events), so a replayed
event is a no-op before it gets here. Safety for the rest:
- UNIQUE stripe_subscription_id: two first deliveries for one subscription create one row (the
  loser's IntegrityError, inside a nested atomic, turns into a guarded update).
- A subscription that ended has its live discounts revoked through the guarded transition, in the
  transaction that records the end; the codes are deactivated at Stripe on commit.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from django.contrib.auth import get_user_model
from django.db import IntegrityError
from django.db.models import Case, F, Value, When
from django.utils import timezone

from audit.beacons import emit_beacon
from core.actors import Actor
from core.transactions import atomic
from loyalty.clients.stripe import StripeRefused, stripe_client
from loyalty.models import PRO_PLAN, Subscription, SubscriptionRead, SubscriptionStatus
from loyalty.services.revocations import revoke_live_discounts

logger = structlog.get_logger(__name__)
ENDED = {SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED}


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """What one read at Stripe said about a subscription (loyalty.webhooks asks for it)."""

    stripe_subscription_id: str
    stripe_customer_id: str
    status: str
    plan: str
    # When Pro began, as far as this read proves it: the subscription's start_date if it was created
    # as Pro and is Pro now; otherwise the time of the read (an earlier Basic period, or an upgrade
    # before a late event, is unknown to us, and a discount must never come early).
    pro_since: datetime
    event_created: datetime  # the event that asked for the read (shown in the admin only)
    read_ticket: int  # SubscriptionRead id, taken before the read was sent
    user_id: int | None = None  # metadata.user_id, set by our checkout
    gone: bool = False  # Stripe answered 404: it no longer knows the subscription


def take_read_ticket(*, stripe_subscription_id: str, stripe_event_id: str = "") -> int:
    """Commit a ticket for a read about to start; call it outside any transaction, right before
    the read (the ordering argument above needs the ticket committed before the GET is sent)."""
    return SubscriptionRead.objects.create(
        stripe_subscription_id=stripe_subscription_id, stripe_event_id=stripe_event_id
    ).pk


def read_subscription(
    *, stripe_subscription_id: str, event_created: datetime, stripe_event_id: str = "", created_as_pro: bool = False
) -> SubscriptionSnapshot:
    """Read the subscription at Stripe as it is now. Never inside a transaction: an HTTP call.

    Raises core.stripe_client.StripeError when Stripe cannot answer (or refuses other than with a
    404): the caller must fail rather than mirror anything older."""
    ticket = take_read_ticket(stripe_subscription_id=stripe_subscription_id, stripe_event_id=stripe_event_id)
    try:
        found = stripe_client().retrieve_subscription(stripe_subscription_id)
    except StripeRefused as exc:  # a bad key or configuration: a person must look; Stripe will redeliver
        emit_beacon("loyalty_subscription_read_refused", subscription=stripe_subscription_id, error=exc.describe())
        raise
    read_at = timezone.now()
    if found is None:
        return SubscriptionSnapshot(
            stripe_subscription_id=stripe_subscription_id,
            stripe_customer_id="",
            status=SubscriptionStatus.CANCELED,
            plan="",
            pro_since=read_at,
            event_created=event_created,
            read_ticket=ticket,
            gone=True,
        )
    created_pro = created_as_pro and found.plan == PRO_PLAN and found.start_date > 0
    return SubscriptionSnapshot(
        stripe_subscription_id=found.id,
        stripe_customer_id=found.customer,
        status=found.status,
        plan=found.plan,
        pro_since=datetime.fromtimestamp(found.start_date, tz=UTC) if created_pro else read_at,
        event_created=event_created,
        read_ticket=ticket,
        user_id=_int_or_none(found.metadata.get("user_id")),
    )


def sync_subscription(*, snapshot: SubscriptionSnapshot, actor: Actor) -> Subscription | None:
    """Mirror one read; revoke the live discounts of a subscription that ended. None when the read
    cannot be matched to a user (a beacon says so), is older than the row, or is of a subscription
    that neither Stripe nor we know."""
    existing = Subscription.objects.filter(stripe_subscription_id=snapshot.stripe_subscription_id).first()
    if snapshot.gone:
        return _end_gone(snapshot, existing, actor)
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
        _revoke(subscription, actor, reason=f"subscription {subscription.status}")
    return subscription


def _create(snapshot: SubscriptionSnapshot, user_id: int) -> Subscription | None:
    try:
        with atomic():
            return Subscription.objects.create(
                user_id=user_id,
                stripe_customer_id=snapshot.stripe_customer_id,
                stripe_subscription_id=snapshot.stripe_subscription_id,
                plan=snapshot.plan,
                status=snapshot.status,
                pro_started_at=snapshot.pro_since if snapshot.plan == PRO_PLAN else None,
                last_event_at=snapshot.event_created,
                read_ticket=snapshot.read_ticket,
            )
    except IntegrityError:
        return None  # a concurrent delivery created it first: update it instead


def _update_if_newer(snapshot: SubscriptionSnapshot) -> Subscription | None:
    if snapshot.plan == PRO_PLAN:
        # Computed in SQL on the row version the UPDATE finally writes: a Pro period continues,
        # an upgrade to Pro starts one at this read.
        pro_started_at: Case | Value = Case(
            When(plan=PRO_PLAN, pro_started_at__isnull=False, then=F("pro_started_at")),
            default=Value(snapshot.pro_since),
        )
    else:
        pro_started_at = Value(None)
    rows = Subscription.objects.filter(stripe_subscription_id=snapshot.stripe_subscription_id)
    changed = rows.filter(read_ticket__lt=snapshot.read_ticket).update(
        stripe_customer_id=snapshot.stripe_customer_id,
        plan=snapshot.plan,
        status=snapshot.status,
        pro_started_at=pro_started_at,
        last_event_at=snapshot.event_created,
        read_ticket=snapshot.read_ticket,
    )
    if not changed and snapshot.status in ENDED:
        # An older read that saw the end: Stripe never leaves canceled or incomplete_expired, so
        # the end stands whatever a newer read (of the same subscription, before it ended) said.
        changed = rows.exclude(status__in=ENDED).update(status=snapshot.status)
    if not changed:
        logger.info("loyalty_subscription_read_stale", subscription=snapshot.stripe_subscription_id)
        return None
    return rows.get()


def _end_gone(snapshot: SubscriptionSnapshot, existing: Subscription | None, actor: Actor) -> Subscription | None:
    """Stripe answered 404: nothing of it can be used any more. Mirrored as canceled if we have it."""
    if existing is None:
        logger.info("loyalty_subscription_unknown_at_stripe", subscription=snapshot.stripe_subscription_id)
        return None
    rows = Subscription.objects.filter(pk=existing.pk)
    rows.exclude(status__in=ENDED).update(status=SubscriptionStatus.CANCELED)
    subscription = rows.get()
    _revoke(subscription, actor, reason="subscription gone at Stripe")
    return subscription


def _revoke(subscription: Subscription, actor: Actor, *, reason: str) -> None:
    revoked = revoke_live_discounts(subscription=subscription, actor=actor, reason=reason)
    logger.info("loyalty_subscription_ended", subscription=subscription.stripe_subscription_id, revoked=revoked)


def _resolve_user(snapshot: SubscriptionSnapshot, existing: Subscription | None) -> int | None:
    if snapshot.user_id is not None and get_user_model().objects.filter(pk=snapshot.user_id).exists():
        return snapshot.user_id
    if existing is not None:
        return existing.user_id
    known = Subscription.objects.filter(stripe_customer_id=snapshot.stripe_customer_id).order_by("-pk").first()
    return known.user_id if known else None


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
