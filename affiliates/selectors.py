"""Reads of the affiliate domain: the 90-day window, tiers, and what an affiliate may see of its own."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, TypeAlias, TypedDict

from django.conf import settings
from django.db.models import Case, DecimalField, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from affiliates.errors import AffiliateErrorCode
from affiliates.models import Affiliate, Commission, CommissionStatus, Referral, Tier, TierEvent, TierEventStatus
from core import currencies
from core.errors import NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User
    from django_stubs_ext import WithAnnotations


class WindowTotal(TypedDict):
    window_total: Decimal


if TYPE_CHECKING:
    # An Affiliate read through with_window_total(): it carries the 90-day total as `window_total`.
    AffiliateWithWindowTotal: TypeAlias = WithAnnotations[Affiliate, WindowTotal]

TIER_WINDOW = timedelta(days=90)
ZERO = Decimal("0.00")


def tier_window(*, now: datetime, prefix: str = "") -> Q:
    """The commissions that count toward a tier: not reversed, in the program currency, last 90 days."""
    return Q(**{f"{prefix}created_at__gt": now - TIER_WINDOW, f"{prefix}currency": settings.AFFILIATE_CURRENCY}) & ~Q(
        **{f"{prefix}status": CommissionStatus.REVERSED}
    )


def with_window_total(queryset: QuerySet[Affiliate], *, now: datetime) -> "QuerySet[AffiliateWithWindowTotal]":
    """Adds `window_total`: the rate, version and sum then come from one statement, one snapshot."""
    total = Sum("commissions__amount", filter=tier_window(now=now, prefix="commissions__"))
    money = DecimalField(max_digits=14, decimal_places=2)
    return queryset.annotate(window_total=Coalesce(total, Value(ZERO), output_field=money))


def affiliate_with_window_total(*, affiliate_id: int, now: datetime) -> "AffiliateWithWindowTotal":
    affiliate = with_window_total(Affiliate.objects.filter(pk=affiliate_id), now=now).first()
    if affiliate is None:
        raise NotFound(f"Affiliate #{affiliate_id} does not exist.", code=AffiliateErrorCode.AFFILIATE_NOT_FOUND)
    return affiliate


def affiliate_for_user(*, user: "User | AnonymousUser", now: datetime) -> "AffiliateWithWindowTotal":
    """The signed-in user's own affiliate (with its 90-day total); anyone else gets 404."""
    affiliate = None
    if user.is_authenticated:
        affiliate = with_window_total(Affiliate.objects.select_related("user").filter(user_id=user.pk), now=now).first()
    if affiliate is None:
        raise NotFound("You have no affiliate account.", code=AffiliateErrorCode.NOT_AN_AFFILIATE)
    return affiliate


def tiers() -> list[Tier]:
    return list(Tier.objects.order_by("threshold"))


def tier_for_total(total: Decimal, tiers: list[Tier]) -> Tier | None:
    """The highest tier whose threshold the total reaches (tiers sorted by threshold)."""
    reached = [tier for tier in tiers if tier.threshold <= total]
    return reached[-1] if reached else None


def affiliates_off_tier(*, tiers: list[Tier], now: datetime) -> list[int]:
    """Affiliates whose stored rate disagrees with their 90-day total, in one aggregate query.

    This is every affiliate for whom a missed evaluation matters: a commission recorded or reversed
    whose on-commit evaluation was lost, commissions that aged out of the window, an edited tier.
    """
    if not tiers:
        return []
    expected = Case(
        *[When(window_total__gte=tier.threshold, then=Value(tier.commission_rate)) for tier in reversed(tiers)],
        default=F("commission_rate"),  # below every threshold: no tier applies, nothing to change
        output_field=IntegerField(),
    )
    queryset = with_window_total(Affiliate.objects.all(), now=now).annotate(expected_rate=expected)
    return list(queryset.exclude(commission_rate=F("expected_rate")).order_by("pk").values_list("pk", flat=True))


def referring_affiliate_id(*, stripe_customer_id: str) -> int | None:
    return Referral.objects.filter(stripe_customer_id=stripe_customer_id).values_list("affiliate_id", flat=True).first()


@dataclass(frozen=True)
class TierProgress:
    current: Tier | None
    next: Tier | None
    window_total: Decimal
    percent: int  # of the next tier's threshold reached, 0-100
    remaining: Decimal


def tier_progress(*, affiliate: "AffiliateWithWindowTotal", tiers: list[Tier]) -> TierProgress:
    """Where the affiliate stands: its tier by rate, the next better one and how far to it."""
    total: Decimal = affiliate.window_total
    current = next((t for t in tiers if t.commission_rate == affiliate.commission_rate), None)
    upcoming = next((t for t in tiers if t.commission_rate > affiliate.commission_rate), None)
    if upcoming is None:
        return TierProgress(current=current, next=None, window_total=total, percent=100, remaining=ZERO)
    percent = 100 if upcoming.threshold <= 0 else int(min(Decimal(100), total * 100 / upcoming.threshold))
    return TierProgress(
        current=current,
        next=upcoming,
        window_total=total,
        percent=percent,
        remaining=max(ZERO, upcoming.threshold - total),
    )


@dataclass(frozen=True)
class WeekTotal:
    week_start: date
    total: Decimal


def weekly_commissions(*, affiliate: Affiliate, now: datetime) -> list[WeekTotal]:
    """Commissions that count toward the tier, per ISO week (Monday) over the 90-day window: one
    GROUP BY query, weeks without commissions filled with zero."""
    rows = (
        Commission.objects.filter(tier_window(now=now), affiliate=affiliate)
        .annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(total=Sum("amount"))
        .order_by("week")
    )
    totals = {row["week"].date(): row["total"] for row in rows}
    first = (now - TIER_WINDOW).date()
    week = first - timedelta(days=first.weekday())
    weeks = []
    while week <= now.date():
        weeks.append(WeekTotal(week_start=week, total=totals.get(week, ZERO)))
        week += timedelta(days=7)
    return weeks


def tier_history(*, affiliate: Affiliate, limit: int = 20) -> list[TierEvent]:
    """Active tier events only (superseded duplicates are evidence for the admin, not history)."""
    events = TierEvent.objects.filter(affiliate=affiliate, status=TierEventStatus.ACTIVE)
    return list(events.order_by("-created_at", "-id")[:limit])


def commissions_for(*, affiliate: Affiliate) -> QuerySet[Commission]:
    return Commission.objects.filter(affiliate=affiliate).order_by("-created_at", "-id")


def commission_for(*, affiliate: Affiliate, commission_id: int) -> Commission:
    """One of the affiliate's own commissions; another affiliate's is 'not found', never 'forbidden'."""
    commission = commissions_for(affiliate=affiliate).filter(pk=commission_id).first()
    if commission is None:
        raise NotFound(f"Commission #{commission_id} not found.", code=AffiliateErrorCode.COMMISSION_NOT_FOUND)
    return commission


# --- what the affiliate's own pages show about its commissions ---------------------------------


def commission_hold() -> timedelta:
    """How long a commission stays pending before it is payable: approve_held_commissions approves
    a pending, undisputed commission once it is COMMISSION_HOLD_DAYS old (refunds and disputes
    usually arrive within that window)."""
    return timedelta(days=settings.COMMISSION_HOLD_DAYS)


def payable_from(commission: Commission) -> date | None:
    """The day a pending commission becomes payable (approved and added to the balance); None for
    one that is not pending (approved is payable now, reversed never is) or is disputed (held until
    the dispute is decided, however old it is). The hourly approval tick may land up to an hour after."""
    if commission.status != CommissionStatus.PENDING or commission.disputed:
        return None
    return timezone.localdate(commission.created_at + commission_hold())


@dataclass(frozen=True)
class Earnings:
    """One currency's commissions: `earned` is approved money net of refunds taken back (what the
    affiliate has earned for good, paid out or not); `pending` is still in its hold period."""

    currency: str
    earned: Decimal
    pending: Decimal


def lifetime_earnings(*, affiliate: Affiliate) -> list[Earnings]:
    """Per currency, program currency first, in one GROUP BY query. Amounts are stored with the
    currency's own precision, so their sums are exact; reversed_minor (refunds taken back from a
    commission still approved or pending) is subtracted in minor units."""
    rows = (
        Commission.objects.filter(affiliate=affiliate)
        .values("currency")
        .annotate(
            earned=Sum("amount", filter=Q(status=CommissionStatus.APPROVED), default=ZERO),
            earned_back=Sum("reversed_minor", filter=Q(status=CommissionStatus.APPROVED), default=0),
            pending=Sum("amount", filter=Q(status=CommissionStatus.PENDING), default=ZERO),
            pending_back=Sum("reversed_minor", filter=Q(status=CommissionStatus.PENDING), default=0),
        )
        .order_by("currency")
    )
    totals = [
        Earnings(
            currency=row["currency"],
            earned=_net(row["earned"], row["earned_back"], row["currency"]),
            pending=_net(row["pending"], row["pending_back"], row["currency"]),
        )
        for row in rows
    ]
    return sorted(totals, key=lambda total: total.currency != settings.AFFILIATE_CURRENCY)


def _net(amount: Decimal, taken_back_minor: int, currency: str) -> Decimal:
    return currencies.from_minor(currencies.to_minor(Decimal(amount), currency) - taken_back_minor, currency)
