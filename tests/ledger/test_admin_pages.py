"""The books' report pages in the admin: the trial balance (per currency, debits against credits)
and an account's statement (debit / credit, running balance and available, links to the transfer
and to the business object). Super-admins only."""

from decimal import Decimal

import pytest
from django.test import Client

from ledger.models import AccountKind, TransferKind
from ledger.services import account_for, post_transfer, reserve
from payouts.models import PayoutStatus
from payouts.services import books
from tests.factories.accounts import SuperAdminFactory, UserFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import PayoutFactory, earned_commission

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def book():
    """An affiliate earned 10.50 EUR and was paid 3.00 (reserved, then posted); a KWD account
    (3 decimals) holds 1.250 earned and a reservation of 0.200 under an unknown reference."""
    affiliate = AffiliateFactory()
    commission = earned_commission(affiliate, Decimal("10.50"), "EUR")
    payout = PayoutFactory(affiliate=affiliate, amount=Decimal("3.00"), status=PayoutStatus.PAID, books="unfunded")
    kwd_payable = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="kwd-1", currency="KWD")
    kwd_expense = account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="KWD")
    post_transfer(
        transfer_id="test:kwd:earn",
        debit=kwd_expense,
        credit=kwd_payable,
        amount=1_250,
        kind=TransferKind.COMMISSION_EARNED,
        reference="nosuchapp.thing:9",
    )
    reserve(
        transfer_id="test:kwd:hold",
        debit=kwd_payable,
        credit=account_for(kind=AccountKind.WISE_CLEARING, currency="KWD"),
        amount=200,
        kind=TransferKind.PAYOUT,
        reference="not a reference",
    )
    return {
        "payable": books.payable_account(affiliate.pk, "EUR"),
        "commission": commission,
        "payout": payout,
        "kwd_payable": kwd_payable,
    }


def test_the_trial_balance_shows_each_currencys_totals_and_that_they_balance(admin_client, book):
    # when
    response = admin_client.get("/admin/ledger/account/trial-balance/")

    # then
    assert response.status_code == 200
    lines = {line.currency: line for line in response.context["lines"]}
    eur, kwd = lines["EUR"], lines["KWD"]
    assert (eur.debits_posted, eur.credits_posted, eur.difference_posted) == (
        Decimal("13.50"),  # 10.50 expense + 3.00 payable (the posted payout)
        Decimal("13.50"),
        Decimal("0.00"),
    )
    assert (eur.debits_pending, eur.credits_pending) == (Decimal("0.00"), Decimal("0.00"))  # the hold was posted
    assert (kwd.debits_posted, kwd.debits_pending, kwd.credits_pending) == (
        Decimal("1.250"),
        Decimal("0.200"),
        Decimal("0.200"),
    )
    page = response.content.decode()
    assert '<td class="money">€13.50</td>' in page and '<td class="money">KWD 1.250</td>' in page
    assert "Every currency balances" in page and "money difference-nonzero" not in page


def test_an_unbalanced_currency_is_highlighted(admin_client, book):
    # given: a tracked column moved behind the books' back (what check_ledger would report)
    book["kwd_payable"].__class__.objects.filter(pk=book["kwd_payable"].pk).update(credits_posted=1_300)

    # when
    page = admin_client.get("/admin/ledger/account/trial-balance/").content.decode()

    # then
    assert "do not balance" in page
    assert 'class="currency-KWD unbalanced"' in page and 'class="currency-EUR balanced"' in page
    assert '<td class="money difference-nonzero">-KWD 0.050</td>' in page


def test_the_statement_lists_transfers_in_order_with_running_balances_and_links(admin_client, book):
    payable, commission, payout = book["payable"], book["commission"], book["payout"]

    # when
    response = admin_client.get(f"/admin/ledger/account/{payable.pk}/statement/")

    # then
    assert response.status_code == 200
    rows = [
        (r.transfer.pk, r.debit, r.credit, r.running_balance, r.running_available) for r in response.context["rows"]
    ]
    reserve_id = books.reservation_id(payout_id=payout.pk, attempt=payout.attempt)
    assert rows == [
        (f"commission:{commission.pk}:earn", None, Decimal("10.50"), Decimal("10.50"), Decimal("10.50")),
        (reserve_id, Decimal("3.00"), None, Decimal("10.50"), Decimal("7.50")),  # held, not yet posted
        (f"{reserve_id}:post", Decimal("3.00"), None, Decimal("7.50"), Decimal("7.50")),
    ]
    page = response.content.decode()
    assert (
        f'<a href="/admin/affiliates/commission/{commission.pk}/change/">affiliates.commission:{commission.pk}</a>'
        in page
    )
    assert f'<a href="/admin/payouts/payout/{payout.pk}/change/">payouts.payout:{payout.pk}</a>' in page
    assert f'href="/admin/ledger/transfer/commission_3A{commission.pk}_3Aearn/change/"' in page  # admin-quoted pk
    assert '<td class="money">€7.50</td>' in page


def test_a_statement_in_kwd_shows_three_decimals_and_unknown_references_as_text(admin_client, book):
    page = admin_client.get(f"/admin/ledger/account/{book['kwd_payable'].pk}/statement/").content.decode()

    assert (
        '<td class="money">KWD 1.250</td>' in page and '<td class="money">KWD 1.050</td>' in page
    )  # available after the hold
    assert '<td class="ref">nosuchapp.thing:9</td>' in page and '<td class="ref">not a reference</td>' in page


def test_the_account_list_and_the_ledger_app_index_link_the_trial_balance(admin_client, book):
    changelist = admin_client.get("/admin/ledger/account/").content.decode()
    app_index = admin_client.get("/admin/ledger/").content.decode()

    assert 'href="/admin/ledger/account/trial-balance/"' in changelist
    assert f'href="/admin/ledger/account/{book["payable"].pk}/statement/"' in changelist
    assert 'href="/admin/ledger/account/trial-balance/"' in app_index


@pytest.mark.parametrize("page", ["trial-balance/", "{pk}/statement/"])
def test_staff_who_are_not_super_admins_are_refused(book, page):
    client = Client()
    client.force_login(UserFactory(is_staff=True))

    response = client.get("/admin/ledger/account/" + page.format(pk=book["payable"].pk))

    assert response.status_code == 403


@pytest.mark.parametrize("page", ["trial-balance/", "{pk}/statement/"])
def test_anonymous_visitors_are_sent_to_the_login_page(book, page):
    response = Client().get("/admin/ledger/account/" + page.format(pk=book["payable"].pk))

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_a_missing_account_is_a_404(admin_client):
    assert admin_client.get("/admin/ledger/account/999999/statement/").status_code == 404


def test_a_super_admin_factory_user_sees_the_pages_too(book):
    client = Client()
    client.force_login(SuperAdminFactory())

    assert client.get("/admin/ledger/account/trial-balance/").status_code == 200
