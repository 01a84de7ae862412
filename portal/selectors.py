"""What the affiliate's own pages and API read: the dashboard, and one of its own payouts.

The dashboard joins the affiliates domain (tier, commissions) with the payouts domain (payouts,
available balance) and the audit trail (when a payout was paid, why it was rejected); that join
lives here, above them, so no domain imports another for it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Page, Paginator

from affiliates.models import Affiliate, Commission, TierEvent
from affiliates.selectors import (
    Earnings,
    TierProgress,
    WeekTotal,
    affiliate_for_user,
    commission_for,
    commission_hold,
    commissions_for,
    lifetime_earnings,
    payable_from,
    tier_history,
    tier_progress,
    tiers,
    weekly_commissions,
)
from audit.models import AuditEntry
from core.currencies import from_minor, normalize
from core.errors import NotFound
from ledger.models import Account, AccountKind
from payouts import selectors as payout_selectors
from payouts.models import Payout, PayoutStatus
from portal.errors import PortalErrorCode

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

HISTORY_LIMIT = 20
PAYOUTS_LIMIT = 20
COMMISSIONS_PER_PAGE = 25


@dataclass(frozen=True)
class CommissionLine:
    """A commission as the affiliate sees it: with the day it becomes payable while it is pending."""

    commission: Commission
    payable_from: date | None


@dataclass(frozen=True)
class PayoutLine:
    """A payout with the outcome of its last decision, read from the audit trail (the record of
    every transition, written with it): when it was paid, or when and why it was rejected."""

    payout: Payout
    paid_at: datetime | None = None
    rejected_at: datetime | None = None
    rejection_reason: str = ""


@dataclass(frozen=True)
class Dashboard:
    """Everything the affiliate's page (and GET /api/affiliates/me/) shows, in a fixed number of
    queries whatever the number of commissions, events or payouts: sums and weeks are aggregated
    in SQL, lists are limited or paginated."""

    affiliate: Affiliate
    currency: str
    progress: TierProgress
    weekly: list[WeekTotal]
    tier_history: list[TierEvent]
    commissions: Page
    commission_lines: list[CommissionLine]
    payout_lines: list[PayoutLine]
    balances: dict[str, Decimal]
    earnings: list[Earnings]
    hold_days: int

    @property
    def payouts(self) -> list[Payout]:
        return [line.payout for line in self.payout_lines]

    @property
    def available_balance(self) -> Decimal:
        """In the program currency (AFFILIATE_CURRENCY), zero when nothing was ever earned in it."""
        return self.balances.get(self.currency, from_minor(0, self.currency))

    @property
    def other_balances(self) -> dict[str, Decimal]:
        return {code: amount for code, amount in self.balances.items() if code != self.currency}

    @property
    def payable_currencies(self) -> list[str]:
        return payable_currencies(self.balances)


def dashboard_for(*, user: "User | AnonymousUser", now: datetime, page: int | str = 1) -> Dashboard:
    affiliate = affiliate_for_user(user=user, now=now)
    commissions = Paginator(commissions_for(affiliate=affiliate), COMMISSIONS_PER_PAGE).get_page(page)
    payouts = list(payout_selectors.payouts_for(affiliate=affiliate)[:PAYOUTS_LIMIT])
    return Dashboard(
        affiliate=affiliate,
        currency=settings.AFFILIATE_CURRENCY,
        progress=tier_progress(affiliate=affiliate, tiers=tiers()),
        weekly=weekly_commissions(affiliate=affiliate, now=now),
        tier_history=tier_history(affiliate=affiliate, limit=HISTORY_LIMIT),
        commissions=commissions,
        commission_lines=[commission_line(commission) for commission in commissions],
        payout_lines=payout_lines(payouts),
        balances=available_balances(affiliate=affiliate),
        earnings=lifetime_earnings(affiliate=affiliate),
        hold_days=commission_hold().days,
    )


def commission_line(commission: Commission) -> CommissionLine:
    return CommissionLine(commission=commission, payable_from=payable_from(commission))


def own_commission(*, affiliate: Affiliate, commission_id: int) -> CommissionLine:
    """One of the affiliate's own commissions; another affiliate's is 'not found'."""
    return commission_line(commission_for(affiliate=affiliate, commission_id=commission_id))


def payout_for(*, affiliate: Affiliate, payout_id: int) -> Payout:
    """One of the affiliate's own payouts; another affiliate's is 'not found'."""
    payout = payout_selectors.payouts_for(affiliate=affiliate).filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"Payout #{payout_id} not found.", code=PortalErrorCode.PAYOUT_NOT_FOUND)
    return payout


def own_payout(*, affiliate: Affiliate, payout_id: int) -> PayoutLine:
    return payout_lines([payout_for(affiliate=affiliate, payout_id=payout_id)])[0]


def payout_lines(payouts: Iterable[Payout]) -> list[PayoutLine]:
    """The payouts with their outcome, in one query over the audit trail for all of them. The
    latest transition into the payout's current state decides (a payout rejected, then re-opened
    and rejected again, shows the second reason)."""
    payouts = list(payouts)
    decided = {PayoutStatus.PAID, PayoutStatus.REJECTED}
    ids = [str(payout.pk) for payout in payouts if payout.status in decided]
    latest: dict[tuple[str, str], AuditEntry] = {}
    if ids:
        entries = AuditEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Payout), object_id__in=ids, target__in=decided
        ).order_by("id")
        latest = {
            (entry.object_id, entry.target): entry for entry in entries.only("object_id", "target", "reason", "at")
        }
    lines = []
    for payout in payouts:
        entry = latest.get((str(payout.pk), payout.status))
        if entry is not None and payout.status == PayoutStatus.PAID:
            lines.append(PayoutLine(payout=payout, paid_at=entry.at))
        elif entry is not None and payout.status == PayoutStatus.REJECTED:
            lines.append(PayoutLine(payout=payout, rejected_at=entry.at, rejection_reason=entry.reason))
        else:
            lines.append(PayoutLine(payout=payout))
    return lines


def available_balances(*, affiliate: Affiliate) -> dict[str, Decimal]:
    """What the affiliate may request, per currency it has a payable account in (program currency
    first), in one query; the same figure as payouts.selectors.available_balance (a display
    figure: the reservation's guarded UPDATE decides a request)."""
    rows = (
        Account.objects.filter(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate.pk))
        .annotate(available=payout_selectors.AVAILABLE)
        .values_list("currency", "available")
        .order_by("currency")
    )
    balances = {currency: from_minor(available, currency) for currency, available in rows}
    program = normalize(settings.AFFILIATE_CURRENCY)
    return dict(sorted(balances.items(), key=lambda item: item[0] != program))


def payable_currencies(balances: dict[str, Decimal]) -> list[str]:
    """The currencies a payout request can succeed in now: those with money available."""
    return [currency for currency, amount in balances.items() if amount > 0]
