"""The dashboard's payout form says plainly why a request was refused: each refusal of the payouts
service (by its error code) in the affiliate's words, with money formatted as money, and nothing
written."""

from decimal import Decimal

import pytest
from django.test import Client

from core.errors import ValidationError
from payouts.errors import PayoutErrorCode
from payouts.models import Payout
from payouts.services import request_payout
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import earned_commission

pytestmark = pytest.mark.django_db


@pytest.fixture
def carla():
    """900.00 USD and 40.00 EUR available; nothing in any other currency."""
    affiliate = AffiliateFactory(user__username="carla")
    earned_commission(affiliate, Decimal("900.00"), currency="USD")
    earned_commission(affiliate, Decimal("40.00"), currency="EUR")
    return affiliate


def post(affiliate, **form) -> list[str]:
    client = Client()
    client.force_login(affiliate.user)
    response = client.post("/affiliate/payouts/", form, follow=True)
    assert response.status_code == 200 and response.redirect_chain == [("/affiliate/", 302)]
    return [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"amount": "5000"},
            "Payout not requested: $5,000.00 exceeds your available balance of $900.00: request $900.00 or less.",
        ),
        (
            {"amount": "99999999999999999"},  # beyond the largest payout the books can hold
            "Payout not requested: That amount exceeds your available balance of $900.00 "
            "(and the largest single payout, $9,999,999,999.99).",
        ),
        (
            {"amount": "10", "currency": "GBP"},  # a real currency, but carla has earned none of it
            "Payout not requested: You have no balance in GBP. You can request payouts in: USD, EUR.",
        ),
        (
            {"amount": "10", "currency": "gbp"},  # the same, typed in lower case
            "Payout not requested: You have no balance in GBP. You can request payouts in: USD, EUR.",
        ),
        (
            {"amount": "10", "currency": "XYZ"},  # not a currency at all
            "Payout not requested: XYZ is not a currency we pay out in. You can request payouts in: USD, EUR.",
        ),
        (
            {"amount": "50", "currency": "EUR"},
            "Payout not requested: €50.00 exceeds your available balance of €40.00: request €40.00 or less.",
        ),
        ({"amount": "1.001"}, "Payout not requested: Amounts in USD have at most 2 decimal places."),
        ({"amount": "0"}, "Payout not requested: Enter an amount greater than zero."),
        ({"amount": "-3"}, "Payout not requested: Enter an amount greater than zero."),
        ({"amount": "abc"}, "Payout not requested: Enter the amount as a number, for example 250.00."),
        ({"amount": ""}, "Payout not requested: Enter the amount you want to be paid."),
    ],
    ids=[
        "over-balance",
        "huge",
        "no-balance-currency",
        "lower-case-currency",
        "not-a-currency",
        "over-eur-balance",
        "too-many-decimals",
        "zero",
        "negative",
        "not-a-number",
        "empty",
    ],
)
def test_each_refusal_has_its_own_plain_message_and_writes_nothing(carla, form, message):
    assert post(carla, **form) == [message]
    assert not Payout.objects.exists()


def test_an_affiliate_with_nothing_earned_is_told_why():
    newcomer = AffiliateFactory(user__username="newcomer")
    assert post(newcomer, amount="10") == [
        "Payout not requested: You have no balance in USD. Nothing is payable yet: "
        "commissions become payable once their hold period is over."
    ]


def test_a_whole_number_currency_says_so():
    affiliate = AffiliateFactory(user__username="kenji")
    earned_commission(affiliate, Decimal("5000"), currency="JPY")
    assert post(affiliate, amount="10.5", currency="JPY") == [
        "Payout not requested: Amounts in JPY are whole numbers, without decimals."
    ]


def test_a_request_in_another_currency_with_a_balance_goes_through_and_is_confirmed_in_its_format(carla):
    assert post(carla, amount="40", currency="EUR") == [
        f"Payout #{Payout.objects.get().pk} of €40.00 requested. We will review it shortly."
    ]
    assert Payout.objects.get().currency == "EUR"


def test_the_huge_amount_is_the_services_own_refusal_with_its_own_code(carla):
    # the portal words the service's code; the service is what refuses (the API gets the same code)
    with pytest.raises(ValidationError) as refused:
        request_payout(affiliate=carla, amount=Decimal("1e17"), currency="USD", actor=carla.user)
    assert refused.value.code == PayoutErrorCode.AMOUNT_TOO_LARGE
    assert refused.value.details == {"maximum": "9999999999.99", "currency": "USD"}


def test_the_dashboard_offers_only_the_currencies_with_money_to_request(carla):
    client = Client()
    client.force_login(carla.user)
    page = client.get("/affiliate/").content.decode()
    assert '<option value="USD">USD</option><option value="EUR">EUR</option>' in page
    assert "Also available: €40.00." in page
