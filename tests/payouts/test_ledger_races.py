"""16 racers on ONE affiliate's payable account: payout requests, approvals of payouts already
requested, and (in some rounds) commission reversals, released together by a Barrier, each on
its own connection (tests.concurrency.race). PostgreSQL decides through the ledger's guarded
UPDATE; every round asserts every invariant and ends with `manage.py check_ledger`.
"""

import time
from decimal import Decimal

import pytest
from django.core.management import call_command

import payouts.tasks  # noqa: F401  registered before the threads race to discover it on their first enqueue
from core.errors import BusinessRuleViolation
from ledger.models import Account, AccountKind, Transfer, TransferFlag, TransferKind
from payouts.models import Payout, PayoutStatus
from payouts.services import approve_payout, request_payout
from tests.concurrency import race
from tests.factories.accounts import SuperAdminFactory
from tests.factories.affiliates import AffiliateFactory
from tests.factories.payouts import earned_commission, post_reversed

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS, APPROVALS, REVERSALS = 10, 4, 2  # + reversals or spare requests: 16 racers a round
AMOUNT = Decimal("100.00")
# (earned, reversal per reversing racer or None: that round's last two racers request instead)
ROUNDS = [
    (Decimal("1000.00"), None),
    (Decimal("500.00"), None),
    (Decimal("2000.00"), None),
    (Decimal("1000.00"), Decimal("200.00")),
    (Decimal("800.00"), Decimal("300.00")),
    (Decimal("1250.00"), Decimal("50.00")),
]


def _payable(affiliate) -> Account:
    return Account.objects.get(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate.pk), currency="EUR")


def test_requests_approvals_and_reversals_on_one_account_never_overdraw_it_through_payouts(wise):
    admin = SuperAdminFactory(username="kerem")
    started, figures = time.perf_counter(), {"requested": 0, "refused": 0, "approved": 0, "approve_refused": 0}
    for round_no, (earned, reversal) in enumerate(ROUNDS):
        # given: an affiliate with `earned` in the books and four payouts already requested
        affiliate = AffiliateFactory()
        commission = earned_commission(affiliate, earned, "EUR")
        waiting = [
            request_payout(affiliate=affiliate, amount=AMOUNT, currency="EUR", actor=affiliate.user)
            for _ in range(APPROVALS)
        ]
        extra = REVERSALS if reversal is None else 0

        def ask(affiliate=affiliate):
            return request_payout(affiliate=affiliate, amount=AMOUNT, currency="EUR", actor=affiliate.user)

        racers = [ask for _ in range(REQUESTS + extra)]
        racers += [lambda p=p: approve_payout(payout_id=p.pk, actor=admin) for p in waiting]
        if reversal is not None:
            racers += [
                lambda i=i, c=commission, r=reversal, n=round_no: post_reversed(c, r, cause=f"refund:{n}:{i}")
                for i in range(REVERSALS)
            ]
        assert len(racers) == 16

        # when: all 16 at once
        outcomes = race(racers)

        # then: every loser was refused for want of balance, nothing else went wrong
        requests, approvals = outcomes[: REQUESTS + extra], outcomes[REQUESTS + extra : REQUESTS + extra + APPROVALS]
        assert all(o.ok for o in outcomes[REQUESTS + extra + APPROVALS :]), "reversals are never refused"
        for outcome in requests + approvals:
            if not outcome.ok:
                assert isinstance(outcome.error, BusinessRuleViolation), repr(outcome.error)
                assert outcome.error.code == "insufficient_balance", repr(outcome.error)
        won = [o for o in requests if o.ok]
        if reversal is None:  # deterministic: exactly the requests that fit won, every approval won
            assert len(won) == min(len(requests), int((earned - APPROVALS * AMOUNT) // AMOUNT))
            assert all(o.ok for o in approvals)

        # the books: reservations never exceeded the earnings, whatever the interleaving
        account = _payable(affiliate)
        reversed_minor = sum(
            Transfer.objects.filter(debit_account=account, kind=TransferKind.COMMISSION_REVERSED).values_list(
                "amount", flat=True
            )
        )
        reserved_minor = sum(
            Transfer.objects.filter(debit_account=account, flag=TransferFlag.PENDING).values_list("amount", flat=True)
        )
        assert reserved_minor == (len(won) + APPROVALS) * 100_00
        assert reserved_minor <= account.credits_posted == int(earned * 100)
        assert account.debits_pending + account.debits_posted - reversed_minor <= account.credits_posted
        # below zero only by a reversal: without it, what payouts hold fits in what was earned
        assert account.credits_posted - account.debits_posted - account.debits_pending >= -reversed_minor
        assert Payout.objects.filter(affiliate=affiliate).count() == APPROVALS + len(won)
        assert Payout.objects.filter(affiliate=affiliate, status=PayoutStatus.REQUESTED).count() == len(won) + sum(
            1 for o in approvals if not o.ok
        )
        call_command("check_ledger")

        figures["requested"] += len(won)
        figures["refused"] += len(requests) - len(won)
        figures["approved"] += sum(1 for o in approvals if o.ok)
        figures["approve_refused"] += sum(1 for o in approvals if not o.ok)
    elapsed = time.perf_counter() - started
    print(
        f"\n[figures] ledger race on one account: {len(ROUNDS)} rounds x 16 racers; requests won "
        f"{figures['requested']}, refused insufficient_balance {figures['refused']}; approvals won "
        f"{figures['approved']}, refused after a reversal {figures['approve_refused']}; check_ledger passed; "
        f"{elapsed:.1f} s"
    )
