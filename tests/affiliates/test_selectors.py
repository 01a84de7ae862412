"""Reads behind the dashboard and the evaluation: weekly buckets, tier progress, the sweeper's query."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from affiliates import selectors
from affiliates.models import Commission
from portal.charts import PLOT_HEIGHT as CHART_HEIGHT
from portal.charts import weekly_chart
from tests.factories.affiliates import AffiliateFactory, CommissionFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def at(commission: Commission, moment: datetime) -> None:
    Commission.objects.filter(pk=commission.pk).update(created_at=moment)


@time_machine.travel(NOW, tick=False)
def test_weekly_buckets_cover_the_window_from_its_monday_and_count_only_tier_commissions():
    affiliate = AffiliateFactory()
    at(CommissionFactory(affiliate=affiliate, amount=Decimal("10.00")), NOW - timedelta(days=89))
    at(CommissionFactory(affiliate=affiliate, amount=Decimal("5.00")), NOW - timedelta(days=1))
    at(CommissionFactory(affiliate=affiliate, amount=Decimal("7.00")), NOW)
    at(CommissionFactory(affiliate=affiliate, amount=Decimal("99.00")), NOW - timedelta(days=91))  # outside
    CommissionFactory(affiliate=affiliate, amount=Decimal("50.00"), status="reversed")
    CommissionFactory(affiliate=AffiliateFactory(), amount=Decimal("60.00"))  # someone else's

    with CaptureQueriesContext(connection) as queries:
        weeks = selectors.weekly_commissions(affiliate=affiliate, now=NOW)

    assert len(queries) == 1
    assert weeks[0].week_start == date(2026, 8, 24) and weeks[-1].week_start == date(2026, 11, 23)
    assert len(weeks) == 14 and all(b.week_start - a.week_start == timedelta(days=7) for a, b in pairwise(weeks))
    totals = {w.week_start: w.total for w in weeks if w.total}
    assert totals == {date(2026, 8, 24): Decimal("10.00"), date(2026, 11, 23): Decimal("12.00")}


def test_a_window_starting_on_a_monday_has_thirteen_weeks():
    monday_window = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)  # 90 days earlier is Monday 2026-08-31
    weeks = selectors.weekly_commissions(affiliate=AffiliateFactory(), now=monday_window)
    assert [weeks[0].week_start, len(weeks)] == [date(2026, 8, 31), 13]


def test_tier_progress_toward_gold_and_at_the_top(default_tiers):
    bronze = AffiliateFactory(commission_rate=20)
    bronze.window_total = Decimal("1125.00")
    progress = selectors.tier_progress(affiliate=bronze, tiers=default_tiers)
    assert (progress.current.name, progress.next.name, progress.percent, progress.remaining) == (
        "Bronze",
        "Gold",
        75,
        Decimal("375.00"),
    )

    bronze.window_total = Decimal("1800.00")  # reached, evaluation pending
    assert selectors.tier_progress(affiliate=bronze, tiers=default_tiers).percent == 100

    gold = AffiliateFactory(commission_rate=25)
    gold.window_total = Decimal("10.00")
    top = selectors.tier_progress(affiliate=gold, tiers=default_tiers)
    assert (top.current.name, top.next, top.percent) == ("Gold", None, 100)


@pytest.mark.parametrize(
    ("total", "expected"),
    [("0.00", "Bronze"), ("1499.99", "Bronze"), ("1500.00", "Gold"), ("99999.00", "Gold")],
)
def test_tier_for_total_picks_the_highest_threshold_reached(default_tiers, total, expected):
    assert selectors.tier_for_total(Decimal(total), default_tiers).name == expected


def test_chart_scales_to_the_best_week_and_keeps_small_weeks_visible():
    weeks = [
        selectors.WeekTotal(date(2026, 1, 5), Decimal("0")),
        selectors.WeekTotal(date(2026, 1, 12), Decimal("0.01")),
        selectors.WeekTotal(date(2026, 1, 19), Decimal("400.00")),  # a round figure: the value axis's top
    ]
    chart = weekly_chart(weeks, currency="USD")
    assert [bar.height for bar in chart.bars] == [0, 2, CHART_HEIGHT]
    assert [bar.y for bar in chart.bars] == [CHART_HEIGHT, CHART_HEIGHT - 2, 0]
    assert weekly_chart([], currency="USD").bars == []
