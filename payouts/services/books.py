"""The payouts' postings in the books (ledger): reserve on request, void on reject / cancel / final
failure, post on Wise's success. Money moves only as ledger transfers; call these inside the
service's transaction, AFTER its guarded transition of the payout row.

Safety layers these functions rely on:
- the ledger's ONE guarded UPDATE of the affiliate's payable account decides whether a reservation
  fits (credits_posted - debits_posted - debits_pending >= amount): no read-then-write, no
  affiliate row lock; a refusal raises and rolls the caller's transaction (and its payout row or
  transition) back;
- stable transfer ids from (payout id, attempt): `payout:{id}:attempt:{n}:reserve`, resolved by
  `<that>:post` or `<that>:void`. A replay returns the original; a post after a void (or the
  reverse) is a Conflict. Every new attempt (retry after a final failure, re-open after a cancel)
  bumps `Payout.attempt`, so each attempt has exactly one reservation and "the current one" is
  derived from the row, never looked up;
- lock order payout row -> account row everywhere in payouts (the transition's guarded UPDATE
  comes first), so two services never wait on each other in opposite orders.
"""

from decimal import Decimal

from affiliates.models import Affiliate
from core.currencies import from_minor, to_minor
from core.errors import BusinessRuleViolation, NotFound
from ledger.errors import LedgerErrorCode
from ledger.models import Account, AccountKind, Transfer, TransferKind
from ledger.services import account_for, post_pending, reserve, void_pending
from payouts.errors import PayoutErrorCode
from payouts.models import Payout
from payouts.selectors import AVAILABLE
from payouts.selectors import available_balance as _available_balance

__all__ = [
    "available_balance",
    "clearing_account",
    "ensure_payable_not_negative",
    "insufficient_balance",
    "payable_account",
    "post_payout",
    "reservation_id",
    "reserve_next_attempt",
    "reserve_payout",
    "void_payout_reservation",
]


def reservation_id(*, payout_id: int, attempt: int) -> str:
    return f"payout:{payout_id}:attempt:{attempt}:reserve"


def payable_account(affiliate_id: int, currency: str) -> Account:
    """The affiliate's payable account in `currency` (tracked, balance enforced), created on first use."""
    return account_for(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(affiliate_id), currency=currency)


def clearing_account(currency: str) -> Account:
    return account_for(kind=AccountKind.WISE_CLEARING, currency=currency)


def available_balance(affiliate: Affiliate, currency: str) -> Decimal:
    """What the affiliate may still request, in major units, read from the ledger (one query)."""
    return _available_balance(affiliate=affiliate, currency=currency)


def reserve_payout(payout: Payout) -> Transfer:
    """Hold the payout's amount on the affiliate's payable account for its current attempt.

    Raises BusinessRuleViolation(insufficient_balance, available_balance=<major units>) when the
    ledger's guarded UPDATE refuses; nothing of the reservation is written then."""
    currency = payout.currency
    try:
        return reserve(
            transfer_id=reservation_id(payout_id=payout.pk, attempt=payout.attempt),
            debit=payable_account(payout.affiliate_id, currency),
            credit=clearing_account(currency),
            amount=to_minor(Decimal(str(payout.amount)), currency),  # str: an instance built with "45.50"
            kind=TransferKind.PAYOUT,
            reference=_reference(payout),
        )
    except BusinessRuleViolation as exc:
        if exc.code != LedgerErrorCode.INSUFFICIENT_BALANCE:
            raise
        raise insufficient_balance(payout.amount, currency, available_minor=exc.details["available"]) from exc


def void_payout_reservation(payout: Payout) -> Transfer | None:
    """Release the current attempt's hold (reject, cancel, final failure at Wise). Voiding twice
    returns the first void; voiding a posted reservation raises Conflict. A payout with no
    reservation (one made before the books existed) has nothing to release: None."""
    return _void(payout.pk, payout.attempt)


def reserve_next_attempt(payout: Payout) -> Transfer:
    """Retry / re-open (the transition already bumped `attempt`): make sure the previous attempt's
    hold is released (a replay if its failure or cancel voided it; a Conflict if it was POSTED:
    money went out, so there is nothing to retry), then reserve anew for this attempt, refused
    with insufficient_balance if the balance no longer covers it."""
    if payout.attempt > 1:
        _void(payout.pk, payout.attempt - 1)
    return reserve_payout(payout)


def _void(payout_id: int, attempt: int) -> Transfer | None:
    try:
        return void_pending(pending_id=reservation_id(payout_id=payout_id, attempt=attempt))
    except NotFound as exc:
        if exc.code != LedgerErrorCode.TRANSFER_NOT_FOUND:
            raise
        return None


def post_payout(payout: Payout) -> Transfer:
    """Wise's success: the current attempt's hold becomes a posted debit of the affiliate's payable.
    Posting twice returns the first post; posting a voided reservation raises Conflict (a success
    after a final failure is for a human to see, never silent). A missing reservation raises
    NotFound: money that left without a hold must not be booked quietly."""
    return post_pending(pending_id=reservation_id(payout_id=payout.pk, attempt=payout.attempt))


def ensure_payable_not_negative(payout: Payout) -> None:
    """Approval's re-check: refuse (insufficient_balance) if the affiliate's payable account went
    below zero since the request (a reversal: refund or lost dispute), i.e. its reservations are
    no longer covered. The account row is read FOR UPDATE in the approving transaction, so a
    reversal committing meanwhile either lands before (and is seen) or waits for the approval."""
    available_minor = (
        Account.objects.select_for_update()
        .filter(kind=AccountKind.AFFILIATE_PAYABLE, owner_id=str(payout.affiliate_id), currency=payout.currency)
        .values_list(AVAILABLE, flat=True)
        .first()
    )
    if available_minor is not None and available_minor < 0:
        balance = from_minor(available_minor, payout.currency)
        raise BusinessRuleViolation(
            f"Insufficient balance: the affiliate's balance is {balance} {payout.currency} (a commission "
            f"was reversed since the request), so payout #{payout.pk} is no longer covered and cannot be approved.",
            code=PayoutErrorCode.INSUFFICIENT_BALANCE,
            available_balance=str(balance),
            requested=str(payout.amount),
            currency=payout.currency,
        )


def insufficient_balance(amount: Decimal, currency: str, *, available_minor: int) -> BusinessRuleViolation:
    balance = from_minor(available_minor, currency)
    return BusinessRuleViolation(
        f"Requested {amount} {currency} exceeds the available balance of {balance}.",
        code=PayoutErrorCode.INSUFFICIENT_BALANCE,
        available_balance=str(balance),
        requested=str(amount),
        currency=currency,
    )


def _reference(payout: Payout) -> str:
    return f"payouts.payout:{payout.pk}"
