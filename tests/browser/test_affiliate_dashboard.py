"""The affiliate's dashboard as Chromium lays it out: the tier bar's drawn width and the weekly chart's SVG bars,
measured on the rendered page (not on the HTML), and a screenshot kept as a test artifact."""

import importlib
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.utils import timezone

from affiliates.models import Commission
from payouts.models import Payout
from tests.browser.conftest import record
from tests.factories.affiliates import AffiliateFactory, CommissionFactory, TierEventFactory
from tests.factories.payouts import hold_in_books, post_earned

pytestmark = pytest.mark.django_db(transaction=True)
# The data migration's own function: a transactional test starts from a flushed database.
default_tiers_migration = importlib.import_module("affiliates.migrations.0003_default_tiers")

# days ago -> (amount, status); Bronze 20% now, Gold 25% from 1,500.00 (the default tiers)
COMMISSIONS = {
    2: ("200.00", "approved"),
    9: ("150.00", "approved"),
    16: ("100.00", "pending"),
    30: ("500.00", "reversed"),  # a reversed commission counts for nothing: no bar, no progress
    44: ("100.00", "pending"),
    79: ("50.00", "pending"),
}
COUNTED = Decimal("600.00")  # 40% of the way to Gold: 900.00 to go
PEAK_BAR_HEIGHT = 140  # portal.charts.PLOT_HEIGHT: the axis top, here the best week (200.00, a round figure)
EXPECTED_HEIGHTS = [35, 70, 70, 105, 140]  # 50, 100, 100, 150 and 200.00 scaled to the best week


@pytest.fixture
def bea():
    default_tiers_migration.create_default_tiers(apps, None)
    affiliate = AffiliateFactory(user__username="bea", commission_rate=20)
    now = timezone.now()
    for days, (amount, status) in COMMISSIONS.items():
        commission = CommissionFactory(affiliate=affiliate, amount=Decimal(amount), status=status)
        Commission.objects.filter(pk=commission.pk).update(created_at=now - timedelta(days=days))  # auto_now_add
        if status == "approved":
            post_earned(commission)  # the balance is read from the ledger: approved money is posted there
    TierEventFactory(affiliate=affiliate, from_rate=25, to_rate=20, tier_name="Bronze", cause="window moved")
    hold_in_books(Payout.objects.create(affiliate=affiliate, amount=Decimal("100.00"), currency="USD"), fund=False)
    return affiliate


def test_dashboard_draws_the_tier_bar_and_the_weekly_chart(new_context, live_server, bea, artifacts_dir: Path):
    started = time.monotonic()
    page = new_context().new_page()
    page.goto("/affiliate/")  # anonymous: sent to the affiliates' sign-in page
    assert "/affiliate/login/?next=/affiliate/" in page.url
    page.fill("#id_username", "bea")
    page.fill("#id_password", "pw")
    with page.expect_navigation() as navigation:
        page.click("#login button[type=submit]")
    response = navigation.value

    assert response is not None and response.status == 200 and page.url.endswith("/affiliate/")
    assert page.locator("#tier .big").inner_text() == "Bronze · 20%"
    assert page.locator("#balance .big").inner_text() == "$250.00"  # approved 350.00 - requested 100.00

    # the tier bar: 40% by its ARIA value, its inline style and the width Chromium actually drew
    bar = page.get_by_role("progressbar", name="Progress to Gold")
    assert bar.get_attribute("aria-valuenow") == "40"
    fill = bar.locator("span")
    assert fill.get_attribute("style") == "width: 40%"
    drawn = fill.bounding_box()["width"] / bar.bounding_box()["width"]
    assert abs(drawn - 0.40) < 0.01, drawn
    assert "40% of the way to Gold" in page.locator("#tier").inner_text()
    assert "$900.00 to go" in page.locator("#tier").inner_text()

    # the chart: one SVG bar per ISO week of the 90-day window, drawn in proportion to the week's total
    svg = page.locator("#chart svg")
    assert svg.is_visible() and svg.bounding_box()["width"] > 400
    bars = svg.locator("rect.week")
    assert bars.count() in (13, 14)
    heights = [int(bars.nth(i).get_attribute("height")) for i in range(bars.count())]
    assert sorted(h for h in heights if h) == EXPECTED_HEIGHTS, heights  # the reversed week stays empty
    assert heights.index(PEAK_BAR_HEIGHT) >= len(heights) - 2  # the best week is this week or last
    drawn_heights = [bars.nth(i).bounding_box()["height"] for i, h in enumerate(heights) if h]
    scale = max(drawn_heights) / PEAK_BAR_HEIGHT
    assert scale > 0.5 and all(
        abs(d - h * scale) <= 1 for d, h in zip(drawn_heights, [h for h in heights if h], strict=True)
    ), (drawn_heights, heights)
    tallest = bars.nth(heights.index(PEAK_BAR_HEIGHT)).locator("title").text_content()
    assert tallest.endswith(": $200.00"), tallest
    assert page.locator("#chart-summary").inner_text().startswith("Best week: $200.00 (week of ")
    assert page.locator("#history li").all_inner_texts()[0].endswith("Moved to Bronze (25% → 20%)")

    page.screenshot(path=str(artifacts_dir / "affiliate-dashboard.png"), full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") == 0
    record(
        f"browser-affiliate-dashboard: tier bar 40% (drawn {drawn:.1%}), {bars.count()} week bars, "
        f"{len(drawn_heights)} non-empty, {COUNTED} USD counted, {time.monotonic() - started:.1f}s"
    )
