"""What Wise says about a transfer: webhooks, the processing poller, and "cancel at Wise".

Wise's lifecycle as it documents it: incoming_payment_waiting -> processing -> funds_converted ->
outgoing_payment_sent, and outgoing_payment_sent -> bounced_back -> processing -> cancelled ->
funds_refunded. So bounced_back is recorded, never final; only cancelled / funds_refunded /
charged_back of the CURRENT attempt fail a processing payout (and void its hold); a success after
a failure, or a bounce after a payout was paid, is booked on the attempt it belongs to
(payouts.services.attempts) and raises a beacon.

Webhooks are at least once and unordered. Four layers make a delivery count once:
1. the (provider, event id) UNIQUE row in webhooks.WebhookEvent: an exact replay is a no-op;
2. ordering by data.occurred_at per attempt: one conditional UPDATE of the PayoutAttempt row keeps
   only a newer state, so a stale delivery changes nothing; the UPDATE also locks the row, so
   deliveries for one transfer queue (lock order: attempt row, payout row, account row);
3. the guarded processing -> paid | failed transition: the poller and a webhook racing on the
   same payout produce one transition (the loser's Conflict is "someone else settled it");
4. the ledger's UNIQUE transfer ids per (payout, attempt): a booking is made at most once.
"""

from datetime import datetime
from enum import StrEnum

import structlog
from django.db.models import Q
from django.utils import timezone

from audit.beacons import emit_beacon
from audit.transitions import apply_transition
from core.actors import Actor, SystemActor, actor_label
from core.errors import BusinessRuleViolation, Conflict, IllegalTransition, NotFound
from core.transactions import atomic
from ledger.errors import LedgerErrorCode
from payouts.authority import ensure_may_review
from payouts.clients.wise import WiseRefused, WiseTransfer, WiseUnavailable, wise_client
from payouts.errors import PayoutErrorCode
from payouts.models import (
    WISE_BOUNCED_STATE,
    WISE_FAILED_STATES,
    WISE_PAID_STATES,
    Payout,
    PayoutAttempt,
    PayoutStatus,
)
from payouts.selectors import payouts_to_poll
from payouts.services import books
from payouts.services.attempts import attempt_for_transfer, book_late_success, book_return, current_attempt
from webhooks.events import claim_webhook_event

logger = structlog.get_logger(__name__)
WEBHOOK = SystemActor("webhook:wise")
POLLER = SystemActor("task:poll_processing_payouts")
# Critical beacon (PayoutsConfig.ready()): paid with no hold to post, the balance would still offer the money.
PAID_WITHOUT_RESERVATION = "payout_paid_without_reservation"


class SettleOutcome(StrEnum):
    APPLIED = "applied"  # processing -> paid | failed
    RECORDED = "recorded"  # a newer state, with nothing to move (funds_converted, bounced_back ...)
    PAID_AFTER_FAILURE = "paid_after_failure"  # sent after its money was released: booked, beacon
    STALE = "stale"  # older than the state we have
    DUPLICATE = "duplicate"  # this exact event was processed before
    SETTLED_ALREADY = "settled_already"  # someone else moved the payout first
    UNKNOWN_TRANSFER = "unknown_transfer"


def record_wise_state(*, transfer_id: str, state: str, occurred_at: datetime) -> SettleOutcome:
    """Apply one `transfers#state-change` delivery (already signature-checked) to the attempt
    whose transfer it is, current or not."""
    with atomic():
        event_id = f"transfer:{transfer_id}:{state}:{occurred_at.isoformat()}"
        if not claim_webhook_event(provider="wise", event_id=event_id, event_type="transfers#state-change"):
            return SettleOutcome.DUPLICATE
        attempt = attempt_for_transfer(transfer_id)
        if attempt is None:
            return SettleOutcome.UNKNOWN_TRANSFER
        reason = f"Wise: {state} at {occurred_at.isoformat()}"
        return apply_wise_state(attempt, state=state, occurred_at=occurred_at, actor=WEBHOOK, reason=reason)


def apply_wise_state(
    attempt: PayoutAttempt, *, state: str, occurred_at: datetime, actor: SystemActor, reason: str
) -> SettleOutcome:
    """Record a newer state on the attempt (and on the payout while it is the current attempt),
    then settle it; an older one changes nothing. Call inside a transaction."""
    newer = (
        Q(wise_state_at__isnull=True)
        | Q(wise_state_at__lt=occurred_at)
        | (Q(wise_state_at=occurred_at) & ~Q(wise_state=state))
    )
    if not PayoutAttempt.objects.filter(newer, pk=attempt.pk).update(wise_state=state, wise_state_at=occurred_at):
        return SettleOutcome.STALE
    attempt.wise_state, attempt.wise_state_at = state, occurred_at
    # Wise's word goes to provider_status, never to the reviewer's note (Payout.reason).
    Payout.objects.filter(pk=attempt.payout_id, attempt=attempt.number).update(
        wise_state=state, wise_state_at=occurred_at, provider_status=reason, provider_status_at=occurred_at
    )
    payout = Payout.objects.select_related("affiliate").get(pk=attempt.payout_id)
    return settle(payout, attempt, state=state, actor=actor, reason=reason)


def settle(payout: Payout, attempt: PayoutAttempt, *, state: str, actor: SystemActor, reason: str) -> SettleOutcome:
    """What one Wise state of one attempt does to its payout and to the books."""
    processing = payout.status == PayoutStatus.PROCESSING and attempt.number == payout.attempt
    if state in WISE_PAID_STATES:
        if processing:
            return _transition(payout, "mark_paid", actor=actor, reason=reason)
        if not book_late_success(payout, attempt, actor=actor.label):
            return SettleOutcome.SETTLED_ALREADY
        if payout.status == PayoutStatus.FAILED and attempt.number == payout.attempt:
            _transition(payout, "mark_paid_after_failure", actor=actor, reason=reason, expected=PayoutStatus.FAILED)
        return SettleOutcome.PAID_AFTER_FAILURE
    if state in WISE_FAILED_STATES:
        if processing:
            return _transition(payout, "mark_failed", actor=actor, reason=reason)
        returned = book_return(payout, attempt, state=state, actor=actor.label)
        return SettleOutcome.RECORDED if returned else SettleOutcome.SETTLED_ALREADY
    if state == WISE_BOUNCED_STATE:
        # Not final: a processing payout waits for cancelled / funds_refunded or a success; a paid
        # one has its money back for now, so the affiliate is credited again.
        book_return(payout, attempt, state=state, actor=actor.label)
    return SettleOutcome.RECORDED


def _transition(
    payout: Payout, name: str, *, actor: SystemActor, reason: str, expected: str = PayoutStatus.PROCESSING
) -> SettleOutcome:
    try:
        apply_transition(instance=payout, transition=name, actor=actor, expected=expected, reason=reason)
    except Conflict:
        return SettleOutcome.SETTLED_ALREADY  # the webhook or the poller got there first
    _book_settlement(payout, name)
    return SettleOutcome.APPLIED


def _book_settlement(payout: Payout, transition: str) -> None:
    """The books' side of Wise's verdict on the current attempt: post its hold on success, void it
    on a final failure (then a retry may reserve again). A payout without a hold (made before the
    books existed) is paid all the same, and a beacon says its books need a look."""
    if transition == "mark_failed":
        books.void_payout_reservation(payout)
    elif transition == "mark_paid":
        try:
            books.post_payout(payout)
        except NotFound as exc:
            if exc.code != LedgerErrorCode.TRANSFER_NOT_FOUND:
                raise
            emit_beacon(PAID_WITHOUT_RESERVATION, object_id=payout.pk, attempt=payout.attempt)


def poll_processing_payouts() -> dict[str, int]:
    """Beat job: ask Wise about payouts processing longer than PAYOUT_PROCESSING_POLL_AFTER."""
    counts: dict[str, int] = {}
    for payout_id in list(payouts_to_poll().values_list("pk", flat=True)):
        try:
            outcome = poll_payout(payout_id=payout_id)
        except WiseUnavailable as exc:
            logger.warning("payout_poll_failed", payout_id=payout_id, error=exc.message)
            outcome = "wise_unavailable"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def poll_payout(*, payout_id: int) -> str:
    payout = Payout.objects.filter(pk=payout_id, status=PayoutStatus.PROCESSING).exclude(wise_transfer_id="").first()
    if payout is None:
        return SettleOutcome.SETTLED_ALREADY
    state = wise_client().get_transfer(transfer_id=payout.wise_transfer_id).status  # no transaction open
    if state not in WISE_PAID_STATES | WISE_FAILED_STATES:
        return SettleOutcome.RECORDED
    with atomic():
        attempt = attempt_for_transfer(payout.wise_transfer_id) or current_attempt(payout)
        # Stamp the state with the time we saw it, so an older webhook arriving later is stale.
        return apply_wise_state(
            attempt, state=state, occurred_at=timezone.now(), actor=POLLER, reason=f"Wise (polled): {state}"
        )


def cancel_at_wise(*, payout_id: int, actor: Actor) -> WiseTransfer:
    """Ask Wise to cancel a processing payout's transfer. Wise refuses once the funds are converted
    (409 transfer.cancellation.not.allowed): its reason is raised for the reviewer. On success the
    `cancelled` webhook (or the poller) moves the payout to failed; retry then re-opens review.
    A review decision: payouts.authority decides who may take it (a super-admin, not the payee)."""
    payout = _processing_with_transfer(payout_id, actor=actor)
    try:
        transfer = wise_client().cancel_transfer(transfer_id=payout.wise_transfer_id)
    except WiseRefused as exc:
        raise BusinessRuleViolation(
            f"Wise refused to cancel transfer {payout.wise_transfer_id}: {exc.message} ({exc.code})",
            code=PayoutErrorCode.WISE_REFUSED,
            wise_code=exc.code,
        ) from exc
    except WiseUnavailable as exc:
        raise BusinessRuleViolation(
            f"Wise did not answer ({exc.message}): the cancellation may or may not have happened; try again.",
            code=PayoutErrorCode.WISE_UNAVAILABLE,
        ) from exc
    logger.info("payout_cancel_at_wise", payout_id=payout.pk, actor=actor_label(actor), wise_status=transfer.status)
    return transfer


def _processing_with_transfer(payout_id: int, *, actor: Actor) -> Payout:
    payout = Payout.objects.select_related("affiliate").filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"Payout #{payout_id} does not exist.")
    ensure_may_review(actor=actor, payout=payout)
    if payout.status != PayoutStatus.PROCESSING:
        raise IllegalTransition(
            f"Only a processing payout can be cancelled at Wise; #{payout.pk} is {payout.status}.",
            code=PayoutErrorCode.NOT_PROCESSING,
            **{"from": payout.status, "to": "cancelled at Wise", "allowed": []},
        )
    if not payout.wise_transfer_id:
        raise BusinessRuleViolation(
            f"Payout #{payout.pk} has no Wise transfer yet: try again in a moment.",
            code=PayoutErrorCode.NO_WISE_TRANSFER,
        )
    return payout
