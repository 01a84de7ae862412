"""Booking transfers with a migration's historical models: what the domain apps' backfills share.

affiliates.ledger_backfill and payouts.ledger_backfill decide WHICH transfers the books should
hold for rows recorded before the ledger existed; this module writes them. It uses the models a
migration hands it (never the live ones, which may have changed since), skips an id that exists
(a replay, or the live code booked it first), and moves the tracked balance columns exactly as
ledger.services does, in the caller's transaction, so `check_ledger` passes afterwards:

    plain          posted on both sides
    pending        held: debits_pending / credits_pending
    post_pending   the hold released and the amount posted
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import F

from core import currencies
from ledger.models import ACCOUNT_POLICIES, TransferFlag


@dataclass(frozen=True)
class HistoricalTransfer:
    id: str
    kind: str
    flag: str
    debit: tuple[str, str]  # (account kind, owner_id)
    credit: tuple[str, str]
    amount: int  # minor units
    currency: str
    reference: str
    pending_id: str | None = None  # for a post_pending: the reservation it resolves


def rounded_to_minor_unit(amount: Decimal, currency: str) -> Decimal:
    """The old code kept every currency at 2 decimals (200.20 JPY): round half-up to ISO's unit."""
    return Decimal(amount).quantize(Decimal(1).scaleb(-currencies.exponent(currency)), rounding=ROUND_HALF_UP)


def insert_historical_transfer(apps: Any, row: HistoricalTransfer) -> int:
    """Insert `row` with `apps`' models unless it (or its reservation's resolution) exists; 1 if inserted."""
    Account, Transfer = apps.get_model("ledger", "Account"), apps.get_model("ledger", "Transfer")
    if Transfer.objects.filter(pk=row.id).exists():
        return 0
    if row.pending_id is not None and Transfer.objects.filter(pending_id=row.pending_id).exists():
        return 0  # the reservation was already resolved (by the live code): its resolution stands
    debit, credit = _account(Account, row.debit, row.currency), _account(Account, row.credit, row.currency)
    Transfer.objects.create(
        id=row.id,
        debit_account=debit,
        credit_account=credit,
        amount=row.amount,
        currency=row.currency,
        kind=row.kind,
        flag=row.flag,
        pending_id=row.pending_id,
        reference=row.reference,
    )
    if debit.tracks_balance:
        Account.objects.filter(pk=debit.pk).update(**_column_moves("debits", row.flag, row.amount))
    if credit.tracks_balance:
        Account.objects.filter(pk=credit.pk).update(**_column_moves("credits", row.flag, row.amount))
    return 1


def _column_moves(side: str, flag: str, amount: int) -> dict[str, Any]:
    pending, posted = f"{side}_pending", f"{side}_posted"
    if flag == TransferFlag.PENDING:
        return {pending: F(pending) + amount}
    if flag == TransferFlag.POST_PENDING:
        return {pending: F(pending) - amount, posted: F(posted) + amount}
    if flag == TransferFlag.PLAIN:
        return {posted: F(posted) + amount}
    raise ValueError(f"a backfill books plain, pending and post_pending transfers only, not {flag!r}")


def _account(Account: Any, key: tuple[str, str], currency: str) -> Any:
    kind, owner_id = key
    policy = ACCOUNT_POLICIES[kind]
    account, _created = Account.objects.get_or_create(
        kind=kind,
        owner_id=owner_id,
        currency=currency,
        defaults={"tracks_balance": policy.tracks_balance, "enforce_balance": policy.enforce_balance},
    )
    return account
