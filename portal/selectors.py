"""What the affiliate's own pages and API read: the dashboard, and one of its own payouts.

The dashboard joins the affiliates domain (tier, commissions) with the payouts domain (payouts,
available balance); that join lives here, above both, so neither domain imports the other for it.
"""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.paginator import Page, Paginator

from affiliates.models import Affiliate, TierEvent
from affiliates.selectors import (
    TierProgress,
    WeekTotal,
    affiliate_for_user,
    commissions_for,
    tier_history,
    tier_progress,
    tiers,
    weekly_commissions,
)
from core.errors import NotFound
from payouts import selectors as payout_selectors
from payouts.models import Payout
from portal.errors import PortalErrorCode

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

HISTORY_LIMIT = 20
PAYOUTS_LIMIT = 20
COMMISSIONS_PER_PAGE = 25


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
    payouts: list[Payout]
    available_balance: Decimal


def dashboard_for(*, user: "User | AnonymousUser", now: datetime, page: int | str = 1) -> Dashboard:
    affiliate = affiliate_for_user(user=user, now=now)
    return Dashboard(
        affiliate=affiliate,
        currency=settings.AFFILIATE_CURRENCY,
        progress=tier_progress(affiliate=affiliate, tiers=tiers()),
        weekly=weekly_commissions(affiliate=affiliate, now=now),
        tier_history=tier_history(affiliate=affiliate, limit=HISTORY_LIMIT),
        commissions=Paginator(commissions_for(affiliate=affiliate), COMMISSIONS_PER_PAGE).get_page(page),
        payouts=list(payout_selectors.payouts_for(affiliate=affiliate)[:PAYOUTS_LIMIT]),
        available_balance=payout_selectors.available_balance(affiliate=affiliate),
    )


def payout_for(*, affiliate: Affiliate, payout_id: int) -> Payout:
    """One of the affiliate's own payouts; another affiliate's is 'not found'."""
    payout = payout_selectors.payouts_for(affiliate=affiliate).filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"Payout #{payout_id} not found.", code=PortalErrorCode.PAYOUT_NOT_FOUND)
    return payout
