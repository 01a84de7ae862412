"""Each attempt of a payout at Wise, and what its transfer's later states do to the books.

An attempt keeps its Wise transfer id for ever (PayoutAttempt, UNIQUE on the transfer id), so a
bounce weeks after the payout was paid, or a success reported for an attempt that was failed and
retried, is applied to THAT attempt. What the books already say about an attempt is read from the
ledger itself (transfer ids derived from (payout, attempt), UNIQUE, so a replay books nothing):

    payout:{id}:attempt:{n}:reserve        the hold (payouts.services.books), later posted or voided
    payout:{id}:attempt:{n}:returned       a sent payout bounced: the affiliate is credited again
    payout:{id}:attempt:{n}:resent         the bounced transfer was sent after all: debited again
    payout:{id}:attempt:{n}:late_success   sent after its hold was voided (final failure, retry)

The last two may take the affiliate's account below zero (a clawback, ledger OVERDRAFT_KINDS) and
are never silent: the critical beacon `payout_paid_after_failure` and Payout.paid_after_failure_at.
Callers hold the attempt row (its guarded state UPDATE) in an open transaction.
"""

from dataclasses import dataclass

from django.utils import timezone

from audit.beacons import emit_beacon
from core.currencies import to_minor
from ledger.models import Transfer, TransferFlag, TransferKind
from ledger.services import post_transfer
from payouts.keys import wise_transaction_id
from payouts.models import Payout, PayoutAttempt, PayoutStatus
from payouts.services import books

# Beacon kinds; the critical ones are declared in PayoutsConfig.ready() (audit.severity).
PAID_AFTER_FAILURE = "payout_paid_after_failure"  # critical: money went out that we had released
BOUNCED_AGAIN = "payout_bounced_again"  # critical: a second bounce of one transfer, booked by a human
FAILED_AFTER_PAID = "payout_failed_after_paid"


@dataclass(frozen=True)
class AttemptBooks:
    """What the ledger holds for one attempt."""

    reservation: Transfer | None
    resolution: str  # "" (pending or no reservation), TransferFlag.POST_PENDING or VOID_PENDING
    returned: bool
    resent: bool
    late_success: bool

    @property
    def sent(self) -> bool:
        """The books say this attempt's money went out (a posted hold or a late success)."""
        return self.resolution == TransferFlag.POST_PENDING or self.late_success

    @property
    def released(self) -> bool:
        return self.resolution == TransferFlag.VOID_PENDING and not self.late_success


def attempt_transfer_id(payout_id: int, number: int, what: str) -> str:
    return f"payout:{payout_id}:attempt:{number}:{what}"


def current_attempt(payout: Payout) -> PayoutAttempt:
    """The row of the payout's current attempt, created on first use (UNIQUE (payout, number))."""
    attempt, _ = PayoutAttempt.objects.get_or_create(
        payout=payout,
        number=payout.attempt,
        defaults={"customer_transaction_id": wise_transaction_id(payout_id=payout.pk, attempt=payout.attempt)},
    )
    return attempt


def attempt_for_transfer(transfer_id: str) -> PayoutAttempt | None:
    """The attempt a Wise transfer belongs to, whichever attempt of its payout is current now."""
    attempt = PayoutAttempt.objects.filter(wise_transfer_id=transfer_id).first()
    if attempt is not None:
        return attempt
    # A payout dispatched before attempts were recorded: adopt its current attempt.
    payout = Payout.objects.filter(wise_transfer_id=transfer_id).first()
    if payout is None:
        return None
    attempt = current_attempt(payout)
    PayoutAttempt.objects.filter(pk=attempt.pk, wise_transfer_id="").update(
        wise_transfer_id=transfer_id,
        wise_quote_id=payout.wise_quote_id,
        wise_state=payout.wise_state,
        wise_state_at=payout.wise_state_at,
        dispatched_at=payout.dispatched_at,
        funded_at=payout.wise_funded_at,
    )
    return PayoutAttempt.objects.get(pk=attempt.pk)


def attempt_books(payout: Payout, number: int) -> AttemptBooks:
    ids = {what: attempt_transfer_id(payout.pk, number, what) for what in ("returned", "resent", "late_success")}
    reserve_id = books.reservation_id(payout_id=payout.pk, attempt=number)
    found = {t.pk: t for t in Transfer.objects.filter(pk__in=[reserve_id, *ids.values()])}
    resolution = Transfer.objects.filter(pending_id=reserve_id).values_list("flag", flat=True).first()
    return AttemptBooks(
        reservation=found.get(reserve_id),
        resolution=resolution or "",
        returned=ids["returned"] in found,
        resent=ids["resent"] in found,
        late_success=ids["late_success"] in found,
    )


def book_return(payout: Payout, attempt: PayoutAttempt, *, state: str, actor: str) -> bool:
    """A transfer whose money went out came back (bounced_back, or a final failure after it was
    sent): credit the affiliate again, once per attempt. True if anything was booked."""
    held = attempt_books(payout, attempt.number)
    legacy_paid = held.reservation is None and payout.status == PayoutStatus.PAID and attempt.number == payout.attempt
    if held.sent and not held.returned:
        _post(payout, attempt, held, "returned")
    elif held.returned and held.resent:
        # A second bounce of the same transfer: its ids are spent, a human books it.
        emit_beacon(BOUNCED_AGAIN, object_id=payout.pk, attempt=attempt.number, actor=actor)
        return False
    elif not legacy_paid:  # nothing went out for it (still processing, or released): nothing to return
        return False
    # Paid (or, before the books existed, paid without a hold) and now coming back: a human looks.
    emit_beacon(FAILED_AFTER_PAID, object_id=payout.pk, attempt=attempt.number, wise_state=state, actor=actor)
    return True


def book_late_success(payout: Payout, attempt: PayoutAttempt, *, actor: str) -> bool:
    """Wise sent money for an attempt whose hold was voided, or that had bounced back: debit the
    affiliate (a clawback if the freed money was requested again), mark the payout for the admin
    and raise the critical beacon. True if anything was booked."""
    held = attempt_books(payout, attempt.number)
    if held.returned and not held.resent:
        what = "resent"
    elif held.released:
        what = "late_success"
    else:
        return False  # already booked as sent (a repeated success), or no hold ever existed
    _post(payout, attempt, held, what)
    now = timezone.now()
    Payout.objects.filter(pk=payout.pk, paid_after_failure_at__isnull=True).update(paid_after_failure_at=now)
    emit_beacon(
        PAID_AFTER_FAILURE,
        object_id=payout.pk,
        attempt=attempt.number,
        transfer_id=attempt.wise_transfer_id,
        booked=what,
        actor=actor,
    )
    return True


def _post(payout: Payout, attempt: PayoutAttempt, held: AttemptBooks, what: str) -> Transfer:
    payable = books.payable_account(payout.affiliate_id, payout.currency)
    clearing = books.clearing_account(payout.currency)
    returning = what == "returned"
    return post_transfer(
        transfer_id=attempt_transfer_id(payout.pk, attempt.number, what),
        debit=clearing if returning else payable,
        credit=payable if returning else clearing,
        amount=held.reservation.amount if held.reservation else to_minor(payout.amount, payout.currency),
        kind=TransferKind.PAYOUT_RETURNED if returning else TransferKind.PAYOUT,
        reference=f"payouts.payout:{payout.pk}",
    )
