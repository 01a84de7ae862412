"""The admin index's one summary of what needs a person's attention.

It reads three apps (payouts, pos_sync, audit) that may not import each other; config is the layer
above all of them (pyproject's import-linter layers), so the summary is put together here, each
figure from its own app's selector.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from audit.models import BeaconAlert
from audit.selectors import beacon_counts_by_outcome, open_alerts, transition_counts
from payouts.selectors import pending_payouts
from pos_sync.selectors import dead_jobs

ALERTS_LISTED = 5


@dataclass(frozen=True)
class PendingReview:
    count: int
    totals: dict[str, Decimal]  # ISO currency code -> the sum of the requested amounts


@dataclass(frozen=True)
class RecentActivity:
    """Background figures, for context: status changes recorded, and in the last 24 hours the lost
    races (someone else acted first) and refused moves (not allowed from the current state)."""

    changes_today: int
    changes_30_days: int
    lost_races_24h: int
    refused_24h: int


@dataclass(frozen=True)
class AttentionSummary:
    pending_review: PendingReview
    dead_sync_jobs: int
    open_alert_count: int
    latest_alerts: list[BeaconAlert]  # the newest ALERTS_LISTED unacknowledged alerts
    activity: RecentActivity

    @property
    def anything(self) -> bool:
        return bool(self.pending_review.count or self.dead_sync_jobs or self.open_alert_count)


def pending_review() -> PendingReview:
    """Payouts waiting for a reviewer's decision, counted and summed per currency (never across
    currencies): one query."""
    rows = list(pending_payouts().order_by().values("currency").annotate(n=Count("id"), total=Sum("amount")))
    return PendingReview(count=sum(row["n"] for row in rows), totals={row["currency"]: row["total"] for row in rows})


def recent_activity(*, now: datetime | None = None) -> RecentActivity:
    now = now or timezone.now()
    changes = transition_counts(now=now)
    outcomes = beacon_counts_by_outcome(since=now - timedelta(hours=24))
    return RecentActivity(
        changes_today=changes["today"],
        changes_30_days=changes["last_30_days"],
        lost_races_24h=outcomes["conflicts"],
        refused_24h=outcomes["refused"],
    )


def attention_summary(*, now: datetime | None = None) -> AttentionSummary:
    """Pending payout reviews with their amounts per currency, dead sync jobs and unacknowledged
    alerts (each a filtered admin list away), and the recent activity behind them."""
    alerts = open_alerts()
    return AttentionSummary(
        pending_review=pending_review(),
        dead_sync_jobs=dead_jobs().count(),
        open_alert_count=alerts.count(),
        latest_alerts=list(alerts[:ALERTS_LISTED]),
        activity=recent_activity(now=now),
    )
