"""Backfill of the books from the commissions recorded before the ledger existed.

Run by migration 0005 with the historical models (and by tests with the live ones): every
approved commission gets its `commission:{id}:earn` transfer, every commission reversed after it
was approved (the audit trail says so) gets the earn and its full reversal. The transfer ids are
the live code's, so running it twice, or after the live code already posted, changes nothing;
each inserted transfer moves the tracked account's balance columns by the same amount in the
same transaction, so `manage.py check_ledger` passes after it.

Amounts recorded with more decimals than the currency has (the old code kept every currency at
2 decimals: 200.20 JPY) are first rounded half-up to the ISO minor unit.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from core import currencies
from core.errors import ValidationError
from ledger.backfill import HistoricalTransfer, insert_historical_transfer, rounded_to_minor_unit
from ledger.models import AccountKind, TransferFlag, TransferKind

PAYABLE = AccountKind.AFFILIATE_PAYABLE.value
EXPENSE = AccountKind.COMMISSION_EXPENSE.value
REFUNDS = AccountKind.REFUNDS.value
PLAIN = TransferFlag.PLAIN.value


@dataclass(frozen=True)
class OldCommission:
    id: int
    affiliate_id: int
    amount: Decimal
    currency: str
    status: str
    reversed_after_approval: bool


def backfill_transfers(commissions: Iterable[OldCommission]) -> list[HistoricalTransfer]:
    """The transfers the books should hold for these commissions (a pure function)."""
    rows: list[HistoricalTransfer] = []
    for c in commissions:
        if c.status != "approved" and not (c.status == "reversed" and c.reversed_after_approval):
            continue
        minor = currencies.to_minor(rounded_to_minor_unit(c.amount, c.currency), c.currency)
        if minor <= 0:
            continue
        payable, ref = (PAYABLE, str(c.affiliate_id)), f"affiliates.commission:{c.id}"
        earn = TransferKind.COMMISSION_EARNED.value
        earn_id = f"commission:{c.id}:earn"
        rows.append(HistoricalTransfer(earn_id, earn, PLAIN, (EXPENSE, ""), payable, minor, c.currency, ref))
        if c.status == "reversed":
            reverse_id = f"commission:{c.id}:reverse:backfill:{minor}"
            reverse = TransferKind.COMMISSION_REVERSED.value
            rows.append(HistoricalTransfer(reverse_id, reverse, PLAIN, payable, (REFUNDS, ""), minor, c.currency, ref))
    return rows


def backfill_ledger(apps: Any) -> int:
    """Insert the missing transfers with `apps`' models; returns how many were inserted."""
    Commission = apps.get_model("affiliates", "Commission")
    inserted = 0
    with transaction.atomic():
        olds = []
        reversed_after = _reversed_after_approval(apps)
        for c in Commission.objects.filter(status__in=["approved", "reversed"]).order_by("pk"):
            try:
                code = currencies.normalize(c.currency)
            except ValidationError:
                continue  # not money the books can hold; reported by nothing else, left as it was
            if rounded_to_minor_unit(c.amount, code) != c.amount:
                Commission.objects.filter(pk=c.pk).update(amount=rounded_to_minor_unit(c.amount, code))
            olds.append(OldCommission(c.pk, c.affiliate_id, c.amount, code, c.status, c.pk in reversed_after))
        for row in backfill_transfers(olds):
            inserted += insert_historical_transfer(apps, row)
    return inserted


def _reversed_after_approval(apps: Any) -> set[int]:
    ContentType = apps.get_model("contenttypes", "ContentType")
    AuditEntry = apps.get_model("audit", "AuditEntry")
    content_type = ContentType.objects.filter(app_label="affiliates", model="commission").first()
    if content_type is None:
        return set()
    entries = AuditEntry.objects.filter(content_type=content_type, transition="reverse", source="approved")
    return {int(pk) for pk in entries.values_list("object_id", flat=True)}
