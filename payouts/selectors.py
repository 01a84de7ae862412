"""Every non-trivial read of payouts."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from affiliates.models import Affiliate
from audit.models import AuditEntry, BeaconCount
from core.currencies import from_minor, normalize
from ledger.models import Account, AccountKind
from payouts.models import Payout, PayoutStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import User

ZERO = Decimal("0.00")
# A payable account's spendable amount in minor units (the ledger's reservation guard, as a read).
AVAILABLE = F("credits_posted") - F("debits_posted") - F("debits_pending")


def available_balance(*, affiliate: Affiliate, currency: str | None = None) -> Decimal:
    """What the affiliate may still request in one currency (default: the program's,
    AFFILIATE_CURRENCY), in major units, read from the books in one query: the payable account's
    credits_posted - debits_posted - debits_pending (earned, less paid out, less held by payouts
    in review or in flight). Negative while a clawback is carried forward. Amounts in two
    currencies never offset: each has its own account.

    A display figure: the reservation's guarded UPDATE in the ledger is what decides a request.
    """
    code = normalize(currency or settings.AFFILIATE_CURRENCY)
    minor = (
        Account.objects.filter(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate.pk), currency=code)
        .values_list(AVAILABLE, flat=True)
        .first()
    )
    return from_minor(minor or 0, code)


def payouts_for(*, affiliate: Affiliate) -> QuerySet[Payout]:
    """One affiliate's payouts, newest first."""
    return Payout.objects.filter(affiliate=affiliate).select_related("reviewed_by").order_by("-created_at", "-id")


def payout_list(*, user: "User", status: str | None = None) -> QuerySet[Payout]:
    """What `user` may see: super-admins all payouts, an affiliate its own, anyone else none."""
    payouts = Payout.objects.select_related("affiliate__user", "reviewed_by").order_by("-created_at", "-id")
    if not user.is_superuser:
        payouts = payouts.filter(affiliate__user=user)
    if status:
        payouts = payouts.filter(status=status)
    return payouts


def pending_payouts() -> QuerySet[Payout]:
    return Payout.objects.filter(status=PayoutStatus.REQUESTED).select_related("affiliate__user").order_by("created_at")


def payouts_to_redispatch(*, now: datetime | None = None) -> QuerySet[Payout]:
    """Approved past the grace period (the on-commit enqueue was lost), or processing without a
    recorded funding (a worker died mid-dispatch). Safe to re-enqueue: dispatch is idempotent."""
    cutoff = (now or timezone.now()) - settings.PAYOUT_DISPATCH_GRACE
    stuck_approved = Q(status=PayoutStatus.APPROVED, reviewed_at__lt=cutoff)
    unfunded = Q(status=PayoutStatus.PROCESSING, wise_funded_at__isnull=True, dispatched_at__lt=cutoff)
    return Payout.objects.filter(stuck_approved | unfunded).order_by("pk")


def payouts_to_poll(*, now: datetime | None = None) -> QuerySet[Payout]:
    """Processing longer than PAYOUT_PROCESSING_POLL_AFTER with a transfer to ask Wise about."""
    cutoff = (now or timezone.now()) - settings.PAYOUT_PROCESSING_POLL_AFTER
    return (
        Payout.objects.filter(status=PayoutStatus.PROCESSING, dispatched_at__lt=cutoff)
        .exclude(wise_transfer_id="")
        .order_by("pk")
    )


def dashboard_figures(*, now: datetime | None = None) -> dict:
    """The admin index widget: pending work, payout transitions, lost races and refusals."""
    now = now or timezone.now()
    pending = pending_payouts().aggregate(count=Count("id"), amount=Sum("amount", default=ZERO))
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    transitions = AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(Payout)).aggregate(
        today=Count("id", filter=Q(at__gte=start_of_day)),
        last_30_days=Count("id", filter=Q(at__gte=now - timedelta(days=30))),
    )
    beacons = BeaconCount.objects.filter(kind__startswith="payout_", hour__gte=now - timedelta(hours=24))
    outcomes = beacons.aggregate(
        conflicts=Sum("count", filter=Q(kind="payout_race_lost"), default=0),
        refused=Sum("count", filter=Q(kind="payout_transition_refused"), default=0),
        forbidden=Sum("count", filter=Q(kind="payout_transition_forbidden"), default=0),
        all=Sum("count", default=0),
    )
    by_kind = list(beacons.values("kind").annotate(total=Sum("count")).order_by("-total"))
    return {"pending": pending, "transitions": transitions, "outcomes": outcomes, "beacons": by_kind}
