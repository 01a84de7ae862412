"""The ledger's admin screens: read-only, balances in major units, an account's statement with its
running balance."""

import pytest
from django.test import Client

from ledger.models import TransferKind
from ledger.services import post_pending, reserve
from tests.ledger.conftest import earn

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(superuser) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def book(payable, expense, clearing):
    earn(payable, expense, 1_050, transfer_id="c1")
    post_pending(
        pending_id=reserve(transfer_id="p1", debit=payable, credit=clearing, amount=300, kind=TransferKind.PAYOUT).pk
    )


def test_the_account_list_shows_balances_and_links_each_statement(client, book, payable):
    page = client.get("/admin/ledger/account/").content.decode()
    assert "7.50" in page  # payable: 10.50 earned - 3.00 paid out, in major units
    assert f"/admin/ledger/transfer/?account={payable.pk}" in page


def test_the_statement_is_the_transfer_list_of_one_account_with_running_balances(client, book, payable):
    response = client.get(f"/admin/ledger/transfer/?account={payable.pk}")
    assert response.status_code == 200
    rows = {t.pk: t.running_balance for t in response.context["cl"].result_list}
    assert rows == {"c1": 1_050, "p1": 1_050, "p1:post": 750}
    assert "7.50" in response.content.decode()


def test_nothing_can_be_added_changed_or_deleted(client, book, payable):
    assert client.get("/admin/ledger/transfer/add/").status_code == 403
    assert client.get("/admin/ledger/account/add/").status_code == 403
    assert client.post(f"/admin/ledger/account/{payable.pk}/delete/", {"post": "yes"}).status_code == 403
    page = client.get("/admin/ledger/transfer/c1/change/")
    assert page.status_code == 200 and "Save" not in page.content.decode()
