"""The books' admin screens show money, not minor units: accounts' balances, transfers' amounts
and running balances, in each currency's own exponent (JPY 0, KWD 3), right-aligned."""

import re

import pytest
from django.test import Client

from ledger.models import AccountKind, TransferKind
from ledger.services import account_for, post_pending, post_transfer, reserve
from tests.ledger.conftest import earn

pytestmark = pytest.mark.django_db


def money(shown: str) -> str:
    return f'<span class="money">{shown}</span>'


@pytest.fixture
def admin(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def books(payable, expense, clearing):
    """EUR: 1,234.50 earned, 3.00 paid out and 2.00 held; JPY: ¥1,235 earned; KWD: 1.250 earned."""
    earn(payable, expense, 123_450, transfer_id="c1")
    post_pending(
        pending_id=reserve(transfer_id="p1", debit=payable, credit=clearing, amount=300, kind=TransferKind.PAYOUT).pk
    )
    reserve(transfer_id="p2", debit=payable, credit=clearing, amount=200, kind=TransferKind.PAYOUT)
    for currency, amount in (("JPY", 1_235), ("KWD", 1_250)):
        post_transfer(
            transfer_id=f"c-{currency}",
            debit=account_for(kind=AccountKind.COMMISSION_EXPENSE, currency=currency),
            credit=account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:2", currency=currency),
            amount=amount,
            kind=TransferKind.COMMISSION_EARNED,
            reference="affiliates.commission:2",
        )
    return payable


def test_accounts_show_posted_held_and_available_as_money(admin, books):
    page = admin.get("/admin/ledger/account/").content.decode()

    assert money("€1,231.50") in page  # posted: 1,234.50 earned - 3.00 paid
    assert money("€2.00") in page  # held for the payout in review
    assert money("€1,229.50") in page  # available
    assert money("¥1,235") in page and money("KWD 1.250") in page
    assert money("-¥1,235") in page  # the platform's expense account, debited
    assert money("Available") in page and money("Held for payouts") in page
    assert ">123450<" not in page and "1231.50" not in page


def test_transfers_show_amounts_and_running_balances_as_money(admin, books):
    listed = admin.get("/admin/ledger/transfer/").content.decode()
    statement = admin.get(f"/admin/ledger/transfer/?account={books.pk}").content.decode()

    assert money("€1,234.50") in listed and money("¥1,235") in listed and money("KWD 1.250") in listed
    assert money("€1,231.50") in statement  # the running balance after the payout was posted
    assert ">123450<" not in listed and ">1250<" not in listed


def test_a_transfers_page_shows_its_amount_as_money_and_links_what_it_records(admin, books):
    page = admin.get("/admin/ledger/transfer/c-KWD/change/").content.decode()

    assert "KWD 1.250" in page
    assert not re.search(r">\s*1250\s*<", page)  # not the raw minor units
    assert "Posted directly" in page and "Commission earned" in page  # plain names of the phase and type


def test_an_accounts_page_shows_balances_as_money(admin, books):
    page = admin.get(f"/admin/ledger/account/{books.pk}/change/").content.decode()

    assert "€1,234.50" in page  # posted credits
    assert "€1,229.50" in page  # available
    assert "No overdraft" in page
    assert not re.search(r">\s*123450\s*<", page)
