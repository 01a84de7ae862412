"""Backfill of the books from the payouts recorded before the ledger existed.

Run by migration 0004 with the historical models (and by tests with the live ones), after the
commissions' backfill (affiliates.ledger_backfill, migration affiliates 0005), so each affiliate's
payable account already holds what it earned. Each payout gets what the live code would have
booked for its CURRENT attempt (earlier attempts were released by a final failure or a cancel,
so they hold nothing):

    requested / approved / processing   payout:{id}:attempt:{n}:reserve        (pending, held)
    paid                                payout:{id}:attempt:{n}:reserve        + its post
                                        payout:{id}:attempt:{n}:reserve:post
    rejected / failed / cancelled       nothing

Released payouts get nothing rather than a reservation and its void: a void nets every column to
zero, so it would add two rows that say nothing, and the live code already treats a released
attempt without a reservation as nothing to release (books.void_payout_reservation returns None,
a retry's books.reserve_next_attempt then reserves the new attempt).

The guard is not applied: a paid payout's money already left and a live one is committed, so
each is booked even if the affiliate's earnings no longer cover it. If that takes an account
below zero, `manage.py check_ledger` says so ("below zero with no reversal") unless a reversal
explains it (a clawback: a commission reversed after it was approved). An unexplained one is what
the old balance check let through (the races of issue 13); a human settles it (reject the
uncovered request, or post an ADJUSTMENT) and the books never hide it.

The transfer ids and columns are the live code's (payouts.services.books, ledger.services), so
running it twice, or after the live code already booked a payout, changes nothing; every inserted
transfer moves the tracked account's balance columns in the same transaction, as
affiliates.ledger_backfill does, so check_ledger's column check passes after it.

Amounts recorded with more decimals than the currency has (the old code kept every currency at
2 decimals) are first rounded half-up to the ISO minor unit, as the commissions' backfill does.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from django.db import transaction

from core import currencies
from core.errors import ValidationError
from ledger.backfill import HistoricalTransfer, insert_historical_transfer, rounded_to_minor_unit
from ledger.models import AccountKind, TransferFlag, TransferKind

PAYABLE = AccountKind.AFFILIATE_PAYABLE.value
CLEARING = AccountKind.WISE_CLEARING.value
PAYOUT = TransferKind.PAYOUT.value
PENDING, POST_PENDING = TransferFlag.PENDING.value, TransferFlag.POST_PENDING.value
HOLDING_STATUSES = frozenset({"requested", "approved", "processing"})
PAID_STATUS = "paid"


@dataclass(frozen=True)
class OldPayout:
    id: int
    affiliate_id: int
    amount: Decimal
    currency: str
    status: str
    attempt: int


def reservation_id(payout_id: int, attempt: int) -> str:
    # payouts.services.books.reservation_id, copied: a migration must not change with the code.
    return f"payout:{payout_id}:attempt:{attempt}:reserve"


def backfill_transfers(payouts: Iterable[OldPayout]) -> list[HistoricalTransfer]:
    """The transfers the books should hold for these payouts (a pure function)."""
    rows: list[HistoricalTransfer] = []
    for p in payouts:
        if p.status not in HOLDING_STATUSES and p.status != PAID_STATUS:
            continue
        minor = currencies.to_minor(rounded_to_minor_unit(p.amount, p.currency), p.currency)
        if minor <= 0:
            continue
        reserve_id, ref = reservation_id(p.id, p.attempt), f"payouts.payout:{p.id}"
        payable = (PAYABLE, str(p.affiliate_id))
        reserve = HistoricalTransfer(reserve_id, PAYOUT, PENDING, payable, (CLEARING, ""), minor, p.currency, ref)
        rows.append(reserve)
        if p.status == PAID_STATUS:
            rows.append(replace(reserve, id=f"{reserve_id}:post", flag=POST_PENDING, pending_id=reserve_id))
    return rows



def backfill_ledger(apps: Any) -> int:
    """Insert the missing transfers with `apps`' models; returns how many were inserted."""
    Payout = apps.get_model("payouts", "Payout")
    inserted = 0
    with transaction.atomic():
        olds = []
        statuses = [*HOLDING_STATUSES, PAID_STATUS]
        for p in Payout.objects.filter(status__in=statuses).order_by("pk"):
            try:
                code = currencies.normalize(p.currency)
            except ValidationError:
                continue  # not money the books can hold; left as it was
            amount = rounded_to_minor_unit(p.amount, code)
            if amount != p.amount and amount > 0:
                Payout.objects.filter(pk=p.pk).update(amount=amount)
            olds.append(OldPayout(p.pk, p.affiliate_id, amount, code, p.status, p.attempt))
        for row in backfill_transfers(olds):
            inserted += insert_historical_transfer(apps, row)
    return inserted
