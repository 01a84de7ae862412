from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Cast, Concat

from core.models import Claim
from loyalty.anniversaries import MIN_YEAR
from loyalty.keys import EMAIL_CLAIM_PREFIX
from loyalty.models import (
    LIVE_STATUSES,
    PRO_PLAN,
    DiscountStatus,
    LoyaltyDiscount,
    Subscription,
    SubscriptionStatus,
)


def pro_subscriptions_past_a_year(*, now: datetime, after_pk: int, limit: int) -> QuerySet[Subscription]:
    """One keyset page of active Pro subscriptions that may have an anniversary due.

    `pro_started_at <= now - 365 days` is a superset (no calendar year is shorter); the exact
    calendar check happens per row. Paging by primary key never loads every subscriber at once.
    """
    return (
        Subscription.objects.filter(
            plan=PRO_PLAN,
            status=SubscriptionStatus.ACTIVE,
            pro_started_at__lte=now - MIN_YEAR,
            pk__gt=after_pk,
        )
        .select_related("user")
        .order_by("pk")[:limit]
    )


def taken_anniversaries(*, user_ids: Iterable[int], subscription_ids: Iterable[int]) -> set[tuple[str, int, int]]:
    """The anniversaries a batch may not be granted again: ("user", user_id, n) for every live row
    (the partial UNIQUE's rule) and ("subscription", subscription_id, n) for any row at all, so a
    revoked discount is not re-granted to the subscription it was revoked from."""
    live = LoyaltyDiscount.objects.filter(user_id__in=list(user_ids), status__in=LIVE_STATUSES)
    ever = LoyaltyDiscount.objects.filter(subscription_id__in=list(subscription_ids))
    taken = {("user", u, n) for u, n in live.values_list("user_id", "anniversary")}
    taken |= {("subscription", s, n) for s, n in ever.values_list("subscription_id", "anniversary")}
    return taken


def stale_pending_discounts(*, now: datetime, idle_for: timedelta, limit: int) -> QuerySet[LoyaltyDiscount]:
    """Pending rows nobody has worked on for `idle_for`: their tick crashed or Stripe failed."""
    cutoff = now - idle_for
    return (
        LoyaltyDiscount.objects.filter(status=DiscountStatus.PENDING, created_at__lte=cutoff)
        .exclude(last_attempt_at__gt=cutoff)
        .order_by("pk")[:limit]
    )


def revoked_discounts_open_at_stripe(*, limit: int) -> QuerySet[LoyaltyDiscount]:
    """Revoked rows whose code has not been confirmed inactive at Stripe (a lost on_commit)."""
    return LoyaltyDiscount.objects.filter(status=DiscountStatus.REVOKED, stripe_closed_at__isnull=True).order_by("pk")[
        :limit
    ]


def applied_discounts_without_email(*, now: datetime, grace: timedelta, limit: int) -> QuerySet[LoyaltyDiscount]:
    """Applied rows whose email claim was never completed (a lost on_commit or a failed send)."""
    completed = Claim.objects.filter(
        key=Concat(Value(EMAIL_CLAIM_PREFIX), Cast(OuterRef("pk"), output_field=CharField())),
        completed_at__isnull=False,
    )
    return (
        LoyaltyDiscount.objects.filter(status=DiscountStatus.APPLIED, applied_at__lte=now - grace)
        .filter(~Exists(completed))
        .order_by("pk")[:limit]
    )


def discounts_for_admin() -> QuerySet[LoyaltyDiscount]:
    return LoyaltyDiscount.objects.select_related("user", "subscription").order_by("-created_at")
