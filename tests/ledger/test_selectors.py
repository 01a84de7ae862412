"""ledger.selectors: balances in one query, an account's statement with running sums, the trial
balance per currency."""

import pytest

from ledger.models import AccountKind, TransferKind
from ledger.selectors import Balance, available, balance, derived_balances, statement, trial_balance
from ledger.services import account_for, post_pending, post_transfer, reserve, void_pending
from tests.ledger.conftest import earn

pytestmark = pytest.mark.django_db


def payout(payable, clearing, amount: int, transfer_id: str):
    return reserve(transfer_id=transfer_id, debit=payable, credit=clearing, amount=amount, kind=TransferKind.PAYOUT)


@pytest.fixture
def book(payable, expense, clearing, refunds):
    """earn 1000, reserve 300 and post 250 of it, reserve 200 and void it, reserve 100 (open),
    refund 50 of a commission."""
    earn(payable, expense, 1_000, transfer_id="c1")
    post_pending(pending_id=payout(payable, clearing, 300, "p1").pk, amount=250)
    void_pending(pending_id=payout(payable, clearing, 200, "p2").pk)
    payout(payable, clearing, 100, "p3")
    post_transfer(
        transfer_id="c1:refund", debit=payable, credit=refunds, amount=50, kind=TransferKind.COMMISSION_REVERSED
    )


def test_a_tracked_balance_is_one_query_on_its_columns(book, payable, django_assert_num_queries):
    with django_assert_num_queries(1):
        bal = balance(payable)
    assert bal == Balance(debits_pending=100, debits_posted=300, credits_pending=0, credits_posted=1_000)
    assert (bal.posted, bal.available) == (700, 600)


def test_a_platform_balance_is_one_query_over_its_transfers(book, clearing, django_assert_num_queries):
    with django_assert_num_queries(1):
        bal = balance(clearing)
    # p1 posted 250 (its 300 no longer pending), p2 voided, p3 still held.
    assert bal == Balance(debits_pending=0, debits_posted=0, credits_pending=100, credits_posted=250)


def test_the_tracked_columns_equal_the_sums_of_the_transfers(book, payable):
    assert derived_balances([payable.pk])[payable.pk] == balance(payable)


def test_available_is_credits_less_debits_posted_and_pending(book, payable, expense):
    assert available(payable) == 1_000 - 300 - 100
    assert available(account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="nobody", currency="EUR")) == 0


def test_the_statement_has_running_balances_in_order(book, payable):
    rows = [(t.pk, t.signed_amount, t.held, t.running_balance, t.running_available) for t in statement(payable)]
    assert rows == [
        ("c1", 1_000, 0, 1_000, 1_000),
        ("p1", 0, -300, 1_000, 700),
        ("p1:post", -250, 300, 750, 750),
        ("p2", 0, -200, 750, 550),
        ("p2:void", 0, 200, 750, 750),
        ("p3", 0, -100, 750, 650),
        ("c1:refund", -50, 0, 700, 600),
    ]
    assert rows[-1][3:] == (balance(payable).posted, available(payable))


def test_the_trial_balance_balances_per_currency(book, payable):
    yen_payable = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:1", currency="JPY")
    yen_expense = account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="JPY")
    earn(yen_payable, yen_expense, 1_500, transfer_id="c2")
    rows = {row.currency: row for row in trial_balance()}
    assert set(rows) == {"EUR", "JPY"}
    eur = rows["EUR"]
    assert (eur.accounts, eur.debits_posted, eur.credits_posted, eur.debits_pending, eur.credits_pending) == (
        4,
        1_000 + 250 + 50,
        1_000 + 250 + 50,
        100,
        100,
    )
    assert (rows["JPY"].debits_posted, rows["JPY"].credits_posted) == (1_500, 1_500)
    assert all(row.balanced for row in rows.values())
