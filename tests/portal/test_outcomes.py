"""What the affiliate is told about its money: the day each pending commission becomes payable (the
same rule the approval job applies), why a payout was rejected, when one was paid, and its lifetime
earnings; and the weekly chart's value axis and table."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from affiliates.models import Commission, CommissionStatus
from affiliates.services import approve_held_commissions
from audit.transitions import apply_transition
from core.actors import SystemActor
from payouts.models import PayoutStatus
from payouts.services import approve_payout, reject_payout, request_payout
from portal.charts import PLOT_HEIGHT, tick_step, weekly_chart
from portal.selectors import dashboard_for
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory, CommissionFactory
from tests.factories.payouts import earned_commission, post_earned

pytestmark = pytest.mark.django_db

RECORDED = datetime(2025, 6, 1, 10, 30, tzinfo=UTC)
WISE = SystemActor("webhook:wise")


def page_of(affiliate, url: str = "/affiliate/") -> str:
    client = Client()
    client.force_login(affiliate.user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def recorded_at(commission: Commission, when: datetime) -> Commission:
    Commission.objects.filter(pk=commission.pk).update(created_at=when)  # auto_now_add
    commission.refresh_from_db()
    return commission


@pytest.fixture
def dana():
    return AffiliateFactory(user__username="dana")


def test_a_pending_commission_shows_the_day_it_becomes_payable_on_the_dashboard_and_its_page(dana, settings):
    settings.COMMISSION_HOLD_DAYS = 30
    pending = recorded_at(CommissionFactory(affiliate=dana, stripe_invoice_id="in_pending"), RECORDED)
    disputed = CommissionFactory(affiliate=dana, stripe_invoice_id="in_disputed")
    Commission.objects.filter(pk=disputed.pk).update(disputed=True)
    earned_commission(dana, Decimal("10.00"), currency="USD", stripe_invoice_id="in_approved")

    dashboard = page_of(dana)
    detail = page_of(dana, f"/affiliate/commissions/{pending.pk}/")

    # 30 days after June 1st, 10:30 UTC
    assert dashboard.count("Payable from Jul 1, 2025") == 1 and "Payable from Jul 1, 2025" in detail
    assert "On hold while the restaurant's dispute is open" in dashboard
    assert "In your balance" in dashboard
    assert "stays pending for 30 days first" in dashboard


def test_the_date_shown_is_the_one_the_approval_job_uses(dana, settings):
    settings.COMMISSION_HOLD_DAYS = 14
    pending = recorded_at(CommissionFactory(affiliate=dana), RECORDED)
    assert "Payable from Jun 15, 2025" in page_of(dana, f"/affiliate/commissions/{pending.pk}/")

    # a minute before the hold ends the job leaves it pending; at the shown day's moment it approves it
    approve_held_commissions(actor=WISE, now=RECORDED + timedelta(days=14, minutes=-1))
    pending.refresh_from_db()
    assert pending.status == CommissionStatus.PENDING
    approve_held_commissions(actor=WISE, now=RECORDED + timedelta(days=14))
    pending.refresh_from_db()
    assert pending.status == CommissionStatus.APPROVED
    assert "Payable from" not in page_of(dana, f"/affiliate/commissions/{pending.pk}/")


def test_a_rejected_payout_shows_when_and_why(dana):
    earned_commission(dana, Decimal("500.00"), currency="USD")
    reviewer = SuperAdminFactory(username="kerem")
    payout = request_payout(affiliate=dana, amount=Decimal("120.00"), currency="USD", actor=dana.user)
    with time_machine.travel(datetime(2025, 3, 14, 15, 0, tzinfo=UTC), tick=False):
        reject_payout(payout_id=payout.pk, actor=reviewer, reason="Bank details do not match the contract")

    dashboard = page_of(dana)
    detail = page_of(dana, f"/affiliate/payouts/{payout.pk}/")

    for page in (dashboard, detail):
        assert "Rejected on Mar 14, 2025: Bank details do not match the contract" in page
        assert "$120.00" in page
    assert '<th scope="row">Rejected</th><td>Mar 14, 2025, 15:00</td>' in detail
    assert "kerem" not in dashboard + detail  # the reason is shown, not who gave it


def test_a_paid_payout_shows_the_day_it_was_paid(dana):
    earned_commission(dana, Decimal("500.00"), currency="USD")
    payout = request_payout(affiliate=dana, amount=Decimal("200.00"), currency="USD", actor=dana.user)
    approve_payout(payout_id=payout.pk, actor=SuperAdminFactory(username="kerem"))
    payout.refresh_from_db()
    apply_transition(instance=payout, transition="start_processing", actor=SystemActor("task:dispatch"))
    with time_machine.travel(datetime(2025, 4, 2, 8, 45, tzinfo=UTC), tick=False):
        apply_transition(instance=payout, transition="mark_paid", actor=WISE, reason="Wise: outgoing_payment_sent")
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.PAID

    dashboard = page_of(dana)
    detail = page_of(dana, f"/affiliate/payouts/{payout.pk}/")

    assert "Paid on Apr 2, 2025." in dashboard and "Paid on Apr 2, 2025." in detail
    assert '<th scope="row">Paid</th><td>Apr 2, 2025, 08:45</td>' in detail
    assert "outgoing_payment_sent" not in dashboard + detail  # the provider's words stay in the back office


def test_a_payout_still_in_review_says_so_and_shows_no_outcome(dana):
    earned_commission(dana, Decimal("50.00"), currency="USD")
    payout = request_payout(affiliate=dana, amount=Decimal("50.00"), currency="USD", actor=dana.user)
    detail = page_of(dana, f"/affiliate/payouts/{payout.pk}/")
    assert "Waiting for review." in detail and "Paid on" not in detail and "Rejected" not in detail


def test_lifetime_earnings_are_approved_commissions_net_of_refunds_per_currency(dana):
    earned_commission(dana, Decimal("1000.00"), currency="USD")
    refunded = earned_commission(dana, Decimal("200.00"), currency="USD")
    Commission.objects.filter(pk=refunded.pk).update(reversed_minor=5000)  # 50.00 taken back by a refund
    CommissionFactory(affiliate=dana, amount=Decimal("600.00"))  # pending: not earned yet
    CommissionFactory(affiliate=dana, amount=Decimal("300.00"), status="reversed")  # never earned
    earned_commission(dana, Decimal("40.00"), currency="EUR")

    data = dashboard_for(user=dana.user, now=datetime.now(UTC))
    page = page_of(dana)

    assert [(e.currency, e.earned, e.pending) for e in data.earnings] == [
        ("USD", Decimal("1150.00"), Decimal("600.00")),
        ("EUR", Decimal("40.00"), Decimal("0.00")),
    ]
    earnings = page[page.index('id="earnings"') :]
    assert "<dt>Earned (USD)</dt><dd>$1,150.00</dd>" in earnings
    assert "<dt>Pending (USD)</dt><dd>$600.00</dd>" in earnings
    assert "<dt>Earned (EUR)</dt><dd>€40.00</dd>" in earnings


def test_lifetime_earnings_with_one_currency_and_none_yet():
    solo, newcomer = AffiliateFactory(), AffiliateFactory()
    post_earned(CommissionFactory(affiliate=solo, amount=Decimal("1234.50"), status="approved"))
    assert "<dt>Earned</dt><dd>$1,234.50</dd>" in page_of(solo)
    assert "Nothing earned yet." in page_of(newcomer)


@pytest.mark.parametrize(
    ("peak", "currency", "step"),
    [
        ("200.00", "USD", "50"),
        ("1234.50", "USD", "500"),
        ("999.00", "EUR", "250"),
        ("0.30", "KWD", "0.1"),
        ("3", "JPY", "1"),  # never a fraction of a yen
        ("10", "JPY", "5"),  # 2.5 would be the round step, but not in yen
        ("0", "USD", "0.01"),
    ],
)
def test_the_value_axis_has_round_steps_in_whole_minor_units(peak, currency, step):
    assert tick_step(Decimal(peak), currency=currency) == Decimal(step)


def test_the_chart_has_a_value_axis_week_labels_and_the_same_figures_as_a_table(dana):
    for days, amount in ((1, "200.00"), (8, "50.00"), (15, "1234.50")):
        recorded_at(CommissionFactory(affiliate=dana, amount=Decimal(amount)), datetime.now(UTC) - timedelta(days=days))

    page = page_of(dana)
    chart = page[page.index('id="chart"') : page.index('id="history"')]

    # the value axis: 0 to the first round figure above the best week, in money
    for label in ("$0.00", "$500.00", "$1,000.00", "$1,500.00"):
        assert f">{label}</span>" in chart
    assert 'style="bottom: 100.0%">$1,500.00</span>' in chart
    # a time axis label per week, and the table alternative with every week's total
    data = dashboard_for(user=dana.user, now=datetime.now(UTC))
    assert chart.count('<td class="num">') == len(data.weekly)
    assert '<td class="num">$1,234.50</td>' in chart and '<td class="num">$50.00</td>' in chart
    x_labels = chart[chart.index('class="x-axis"') :].split("</div>")[0]
    assert x_labels.count("<span>") == len(data.weekly)
    assert "Best week: $1,234.50" in chart


def test_bars_are_scaled_to_the_axis_top_not_the_best_week():
    from affiliates.selectors import WeekTotal

    weeks = [
        WeekTotal(datetime(2025, 1, 6).date(), Decimal("1234.50")),
        WeekTotal(datetime(2025, 1, 13).date(), Decimal("1.00")),
    ]
    chart = weekly_chart(weeks, currency="USD")
    assert [tick.value for tick in chart.ticks] == [0, 500, 1000, 1500]
    assert chart.bars[0].height == int(Decimal("1234.50") / 1500 * PLOT_HEIGHT)
    assert chart.bars[1].height == 2  # a small week stays visible
