"""The affiliates' admin screens show money as money: the currency's symbol or code, its ISO
exponent (JPY 0, KWD 3), grouping, in right-aligned columns; Stripe's amounts converted from
Stripe's own units; rates as percents; plain labels."""

import re
from decimal import Decimal

import pytest
from django.test import override_settings

from affiliates.models import StripeAdjustment
from tests.factories.affiliates import CommissionFactory, TierEventFactory

pytestmark = pytest.mark.django_db

RAW_DECIMAL = re.compile(r"\d\.\d{4,}")


def money(shown: str) -> str:
    return f'<span class="money">{shown}</span>'


def test_commissions_are_listed_in_their_own_currency(admin_client):
    CommissionFactory(amount=Decimal("1200"), currency="USD", rate=25)
    CommissionFactory(amount=Decimal("1235"), currency="JPY")
    CommissionFactory(amount=Decimal("1.25"), currency="KWD", reversed_minor=250)

    page = admin_client.get("/admin/affiliates/commission/").content.decode()

    assert money("$1,200.00") in page and money("¥1,235") in page and money("KWD 1.250") in page
    assert money("KWD 0.250") in page  # taken back, in fils
    assert money("Commission") in page  # the column title lines up with its amounts
    assert ">25%<" in page
    assert "1200.000" not in page and "1235.000" not in page and not RAW_DECIMAL.search(page)


def test_a_commissions_page_shows_the_invoice_in_stripes_units_converted(admin_client):
    usd = CommissionFactory(amount=Decimal("1200"), currency="USD", invoice_amount_paid=600_000)
    kwd = CommissionFactory(amount=Decimal("1.25"), currency="KWD", invoice_amount_paid=6_250)

    usd_page = admin_client.get(f"/admin/affiliates/commission/{usd.pk}/change/").content.decode()
    kwd_page = admin_client.get(f"/admin/affiliates/commission/{kwd.pk}/change/").content.decode()

    assert "$1,200.00" in usd_page and "$6,000.00" in usd_page
    assert "KWD 1.250" in kwd_page and "KWD 6.250" in kwd_page
    assert "600000" not in usd_page and "1200.000" not in usd_page
    assert "Stripe invoice" in usd_page  # the label, not "Stripe invoice id"


def test_refunds_and_disputes_convert_stripes_units(admin_client):
    StripeAdjustment.objects.create(
        kind="refund", stripe_object_id="ch_1", amount=1_235, charge_amount=2_000, currency="jpy", status="refunded"
    )
    StripeAdjustment.objects.create(
        kind="dispute", stripe_object_id="dp_1", amount=60_000, charge_amount=600_000, currency="usd", status="open"
    )

    page = admin_client.get("/admin/affiliates/stripeadjustment/").content.decode()

    assert money("¥1,235") in page and money("¥2,000") in page  # JPY is zero-decimal at Stripe
    assert money("$600.00") in page and money("$6,000.00") in page
    assert "Dispute open" in page and ">60000<" not in page


@override_settings(AFFILIATE_CURRENCY="USD")
def test_tiers_and_tier_events_show_thresholds_and_totals_as_money(admin_client):
    event = TierEventFactory(window_total=Decimal("1600.00"), cause="admin re-evaluation")

    tiers = admin_client.get("/admin/affiliates/tier/").content.decode()
    event_page = admin_client.get(f"/admin/affiliates/tierevent/{event.pk}/change/").content.decode()
    events = admin_client.get("/admin/affiliates/tierevent/").content.decode()

    assert money("$1,500.00") in tiers and ">25%<" in tiers  # Gold, the default tier
    assert "$1,600.00" in event_page and "1600.00<" not in event_page
    assert ">20%<" in events and ">25%<" in events


@override_settings(AFFILIATE_CURRENCY="USD")
def test_reevaluating_a_tier_reports_in_words_and_money(admin_client):
    commission = CommissionFactory(amount=Decimal("1600.00"), affiliate__commission_rate=20, status="approved")
    name = commission.affiliate.user.username

    response = admin_client.post(
        "/admin/affiliates/affiliate/",
        {"action": "reevaluate_tier", "_selected_action": [commission.affiliate_id]},
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == [f"{name}: rate changed from 20% to 25% (commissions over the last 90 days: $1,600.00)."]
