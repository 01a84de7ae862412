"""The payouts' backfill (payouts.ledger_backfill, migration payouts 0004): payouts made before the
ledger existed get what the live code would have booked, after the commissions' backfill, and
check_ledger passes after both."""

import importlib
from decimal import Decimal
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.core.management.base import CommandError

from affiliates.ledger_backfill import backfill_ledger as backfill_commissions
from core.errors import BusinessRuleViolation
from ledger.checks import check_ledger
from ledger.models import Account, AccountKind, Transfer, TransferFlag, TransferKind
from ledger.services import account_for, post_transfer
from payouts.ledger_backfill import backfill_ledger as backfill_payouts
from payouts.models import Payout, PayoutStatus
from payouts.selectors import available_balance
from payouts.services import books
from tests.factories.affiliates import AffiliateFactory, CommissionFactory
from tests.factories.payouts import PayoutFactory

pytestmark = pytest.mark.django_db

LIVE = (PayoutStatus.REQUESTED, PayoutStatus.APPROVED, PayoutStatus.PROCESSING)


def backfill() -> tuple[int, int]:
    """What the migrations run, in their order: the commissions' backfill, then the payouts'."""
    return backfill_commissions(apps), backfill_payouts(apps)


def books_snapshot() -> tuple[list[tuple], list[tuple]]:
    transfers = list(Transfer.objects.order_by("pk").values_list("pk", "flag", "amount", "pending_id"))
    columns = ("pk", "debits_pending", "debits_posted", "credits_pending", "credits_posted")
    return transfers, list(Account.objects.order_by("pk").values_list(*columns))


def check_ledger_output() -> str:
    out = StringIO()
    call_command("check_ledger", stdout=out)
    return out.getvalue()


def test_every_status_is_booked_as_the_live_code_would_and_check_ledger_passes():
    # given: commissions and payouts in every status, with no ledger entries at all
    affiliate = AffiliateFactory()
    for amount in ("600.00", "400.00"):
        CommissionFactory(affiliate=affiliate, status="approved", amount=Decimal(amount), currency="EUR")
    CommissionFactory(affiliate=affiliate, amount=Decimal("999.00"), currency="EUR")  # still held: not earned
    CommissionFactory(affiliate=affiliate, status="approved", amount=Decimal("5000"), currency="JPY")
    payouts = {
        status: PayoutFactory(affiliate=affiliate, status=status, amount=amount, books=False)
        for status, amount in [
            (PayoutStatus.REQUESTED, Decimal("100.00")),
            (PayoutStatus.APPROVED, Decimal("50.00")),
            (PayoutStatus.PROCESSING, Decimal("70.00")),
            (PayoutStatus.PAID, Decimal("200.00")),
            (PayoutStatus.REJECTED, Decimal("30.00")),
            (PayoutStatus.FAILED, Decimal("40.00")),
            (PayoutStatus.CANCELLED, Decimal("25.00")),
        ]
    }
    retried_paid = PayoutFactory(
        affiliate=affiliate, status=PayoutStatus.PAID, amount=Decimal("80.00"), attempt=3, books=False
    )
    jpy = PayoutFactory(
        affiliate=affiliate, status=PayoutStatus.PAID, amount=Decimal("1500.40"), currency="JPY", books=False
    )
    assert not Transfer.objects.exists()

    # when: the two backfills run, as the migrations do (affiliates 0005, then payouts 0004)
    assert backfill() == (3, 2 * 3 + 3)

    # then: a reservation for each live payout's current attempt, reservation + post for each paid one
    booked = dict(Transfer.objects.filter(kind=TransferKind.PAYOUT).values_list("pk", "flag"))
    expected = {books.reservation_id(payout_id=payouts[s].pk, attempt=1): TransferFlag.PENDING for s in LIVE}
    for paid, attempt in [(payouts[PayoutStatus.PAID], 1), (retried_paid, 3), (jpy, 1)]:
        reserve_id = books.reservation_id(payout_id=paid.pk, attempt=attempt)
        expected |= {reserve_id: TransferFlag.PENDING, f"{reserve_id}:post": TransferFlag.POST_PENDING}
    assert booked == expected  # rejected, failed and cancelled hold nothing: no transfer at all
    assert Transfer.objects.get(pk=books.reservation_id(payout_id=jpy.pk, attempt=1)).amount == 1500
    jpy.refresh_from_db()
    assert jpy.amount == Decimal("1500")  # rounded to JPY's minor unit, as the commissions' backfill does

    # and: the books balance, and the balance is approved commissions minus live and paid payouts
    assert "ledger OK" in check_ledger_output()
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("1000.00") - (100 + 50 + 70 + 200 + 80)
    assert available_balance(affiliate=affiliate, currency="JPY") == Decimal("5000") - 1500

    # and: running it again changes nothing
    before = books_snapshot()
    assert backfill() == (0, 0)
    assert books_snapshot() == before
    assert "ledger OK" in check_ledger_output()


def test_the_live_code_takes_over_the_backfilled_books():
    affiliate = AffiliateFactory()
    CommissionFactory(affiliate=affiliate, status="approved", amount=Decimal("300.00"), currency="EUR")
    processing = PayoutFactory(
        affiliate=affiliate, status=PayoutStatus.PROCESSING, amount=Decimal("100.00"), books=False
    )
    requested = PayoutFactory(affiliate=affiliate, status=PayoutStatus.REQUESTED, amount=Decimal("50.00"), books=False)
    failed = PayoutFactory(affiliate=affiliate, status=PayoutStatus.FAILED, amount=Decimal("60.00"), books=False)
    backfill()

    # Wise's success posts the backfilled hold; a reject voids one; a released payout has nothing to void
    books.post_payout(processing)
    assert books.post_payout(processing).pk == books.reservation_id(payout_id=processing.pk, attempt=1) + ":post"
    books.void_payout_reservation(requested)
    assert books.void_payout_reservation(failed) is None
    # a retry of the failed payout reserves its new attempt from the balance
    Payout.objects.filter(pk=failed.pk).update(attempt=2)
    failed.refresh_from_db()
    books.reserve_next_attempt(failed)

    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("300.00") - 100 - 60
    assert check_ledger().ok
    assert backfill() == (0, 0)  # the live code's rows are the backfill's own ids: nothing added
    assert check_ledger().ok


def test_a_paid_payout_the_earnings_do_not_cover_is_booked_and_reported_until_settled():
    # given: the old code paid 150 out of 100 earned (the race of issue 13), and a request is in review
    affiliate = AffiliateFactory()
    CommissionFactory(affiliate=affiliate, status="approved", amount=Decimal("100.00"), currency="EUR")
    PayoutFactory(affiliate=affiliate, status=PayoutStatus.PAID, amount=Decimal("150.00"), books=False)
    backfill()

    # then: the money that left is booked anyway, the account is below zero with nothing to explain
    # it, and check_ledger says so (non-zero exit with a readable report)
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("-50.00")
    report = check_ledger()
    assert [f.check for f in report.findings] == ["overdraft"], report.summary()
    with pytest.raises(CommandError):
        call_command("check_ledger", stdout=StringIO(), stderr=StringIO())
    # while it is negative, no reservation succeeds
    with pytest.raises(BusinessRuleViolation):
        PayoutFactory(affiliate=affiliate, amount=Decimal("1.00"), books="unfunded")

    # when: a human settles it with an adjustment, the books pass
    post_transfer(
        transfer_id=f"adjustment:affiliate:{affiliate.pk}:backfill-overpayment",
        kind=TransferKind.ADJUSTMENT,
        debit=account_for(kind=AccountKind.COMMISSION_EXPENSE, currency="EUR"),
        credit=books.payable_account(affiliate.pk, "EUR"),
        amount=5_000,
    )
    assert "ledger OK" in check_ledger_output()


def test_the_migration_runs_the_backfill():
    affiliate = AffiliateFactory()
    CommissionFactory(affiliate=affiliate, status="approved", amount=Decimal("100.00"), currency="EUR")
    payout = PayoutFactory(affiliate=affiliate, status=PayoutStatus.APPROVED, amount=Decimal("40.00"), books=False)
    importlib.import_module("affiliates.migrations.0005_backfill_ledger").backfill(apps, None)
    migration = importlib.import_module("payouts.migrations.0004_backfill_ledger")
    migration.backfill(apps, None)
    migration.backfill(apps, None)

    assert Transfer.objects.filter(pk=books.reservation_id(payout_id=payout.pk, attempt=1)).count() == 1
    assert available_balance(affiliate=affiliate, currency="EUR") == Decimal("60.00")
    assert check_ledger().ok
