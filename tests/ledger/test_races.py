"""Races on the books, with PostgreSQL doing the deciding: 16 threads, one connection each
(tests.concurrency.race closes them), released together by a Barrier, several rounds.

Every round asserts every invariant: the account never below zero, exactly the reservations that
fit won, each loser told the available amount, one row per transfer id and per resolution, and
check_ledger passes.
"""

import time

import pytest

from core.errors import BusinessRuleViolation, Conflict
from ledger.checks import check_ledger
from ledger.errors import LedgerErrorCode
from ledger.models import Account, AccountKind, Transfer, TransferFlag, TransferKind
from ledger.selectors import available, balance
from ledger.services import account_for, post_pending, post_transfer, reserve, void_pending
from tests.concurrency import race
from tests.ledger.conftest import earn, summary_line

pytestmark = pytest.mark.django_db(transaction=True)
RACERS = 16
# (balance, amount per reservation): floor(balance / amount) of the 16 may win.
ROUNDS = [(1_000, 150), (1_000, 100), (1_600, 100), (5_000, 100), (99, 100), (1_000, 1), (700, 233), (1_234, 77)]


def platform():
    return (
        account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="EUR"),
        account_for(kind=AccountKind.WISE_CLEARING, currency="EUR"),
    )


def test_reservations_on_one_account_never_overdraw_it():
    expense, clearing = platform()
    started, won_total, refused_total = time.perf_counter(), 0, 0
    for round_no, (funds, amount) in enumerate(ROUNDS):
        # given: an affiliate whose balance covers only some of the 16 requests
        payable = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=f"affiliate:{round_no}", currency="EUR")
        earn(payable, expense, funds)

        def request(i: int, payable=payable, amount=amount, round_no=round_no):
            return reserve(
                transfer_id=f"payout:{round_no}-{i}:attempt:1:reserve",
                debit=payable,
                credit=clearing,
                amount=amount,
                kind=TransferKind.PAYOUT,
            )

        # when: 16 payout requests arrive at once
        outcomes = race([lambda i=i: request(i) for i in range(RACERS)])
        # then: exactly the ones that fit won; the others were told what was left
        winners = [o for o in outcomes if o.ok]
        losers = [o.error for o in outcomes if not o.ok]
        expected = min(RACERS, funds // amount)
        assert len(winners) == expected, (funds, amount, [repr(e) for e in losers])
        assert all(isinstance(e, BusinessRuleViolation) for e in losers), losers
        assert all(e.code == LedgerErrorCode.INSUFFICIENT_BALANCE for e in losers)
        assert all(0 <= e.details["available"] < amount for e in losers)
        bal = balance(payable)
        assert bal.debits_pending == expected * amount <= bal.credits_posted
        assert available(payable) == funds - expected * amount >= 0
        assert Transfer.objects.filter(debit_account=payable, flag=TransferFlag.PENDING).count() == expected
        report = check_ledger()
        assert report.ok, report.summary()
        won_total, refused_total = won_total + len(winners), refused_total + len(losers)
    summary_line(
        f"[figures] ledger reservation race: {len(ROUNDS)} rounds x {RACERS} threads on one account, "
        f"{won_total} reserved (= floor(balance/amount) each round), {refused_total} refused insufficient_balance, "
        f"never below zero, check_ledger OK, {time.perf_counter() - started:.1f}s"
    )


def test_one_pending_transfer_resolves_once_under_a_race():
    expense, clearing = platform()
    started, post_wins = time.perf_counter(), 0
    for round_no in range(6):
        payable = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=f"affiliate:{round_no}", currency="EUR")
        earn(payable, expense, 500)
        pending = reserve(
            transfer_id=f"payout:{round_no}:reserve", debit=payable, credit=clearing, amount=500, kind="payout"
        )
        # 8 "Wise says sent" against 8 "admin rejects", each with its own transfer id
        racers = [
            (lambda i=i: post_pending(pending_id=pending.pk, transfer_id=f"{pending.pk}:post:{i}"))
            if i % 2
            else (lambda i=i: void_pending(pending_id=pending.pk, transfer_id=f"{pending.pk}:void:{i}"))
            for i in range(RACERS)
        ]
        outcomes = race(racers)
        resolution = Transfer.objects.get(pending=pending)
        for outcome in outcomes:
            if outcome.ok:  # the winner, or a racer of the same action handed the winner's row
                assert outcome.result.pk == resolution.pk
            else:
                assert isinstance(outcome.error, Conflict), outcome.error
                assert outcome.error.details["resolved_by"] == resolution.pk
        assert sum(o.ok for o in outcomes) == RACERS // 2  # every racer of the winning action
        post_won = resolution.flag == TransferFlag.POST_PENDING
        post_wins += post_won
        assert balance(payable).debits_pending == 0
        assert balance(payable).debits_posted == (500 if post_won else 0)
        assert check_ledger().ok
    summary_line(
        f"[figures] ledger resolution race: 6 rounds x {RACERS} threads (8 post, 8 void) on one pending transfer, "
        f"1 resolution each round (post won {post_wins}, void won {6 - post_wins}), "
        f"{time.perf_counter() - started:.1f}s"
    )


def test_a_replayed_posting_and_a_new_account_are_written_once():
    def first_commission():
        payable = account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id="affiliate:new", currency="KWD")
        expense = account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="KWD")
        return earn(payable, expense, 1_234, transfer_id="commission:1:earn")

    outcomes = race([first_commission] * RACERS)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    assert {o.result.pk for o in outcomes} == {"commission:1:earn"}
    assert Account.objects.filter(currency="KWD").count() == 2
    payable = Account.objects.get(owner_id="affiliate:new")
    assert balance(payable).credits_posted == 1_234  # the balance moved once
    assert check_ledger().ok


def test_opposite_transfers_between_two_tracked_accounts_do_not_deadlock():
    # Rows are updated in primary-key order whatever the direction, so A->B and B->A never wait
    # on each other crosswise (PostgreSQL would abort one with a deadlock error).
    expense, _ = platform()
    a, b = (account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=f"affiliate:{n}", currency="EUR") for n in "ab")
    earn(a, expense, 10_000)
    earn(b, expense, 10_000)
    for round_no in range(5):
        outcomes = race(
            [
                lambda i=i: post_transfer(
                    transfer_id=f"move:{round_no}:{i}",
                    debit=a if i % 2 else b,
                    credit=b if i % 2 else a,
                    amount=10,
                    kind=TransferKind.ADJUSTMENT,
                )
                for i in range(RACERS)
            ]
        )
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert available(a) == available(b) == 10_000
    assert check_ledger().ok
