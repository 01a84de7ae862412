"""Wise dispatch, exactly once: quote -> transfer -> fund, safe to run twice or concurrently.

Safety layers, in the order they act:
1. state machine + race guard: the guarded approved -> processing is the claim on dispatch. A
   cancel that lands first stops it (the dispatch then finds `cancelled` and does nothing); a
   rejected payout or a lost race never reaches Wise.
2. an core.claims lease per (payout, attempt): one worker at a time talks to Wise for it, so a
   task delivered twice or two workers running it at once make one set of calls. It is released
   when the outcome is known not to matter (every step below is safe to repeat) and kept when a
   funding request's outcome is unknown, until its lease runs out.
3. provider idempotency: the transfer's customerTransactionId is derived only from (payout id,
   attempt), so a retry after a timeout gets the transfer Wise already made.
4. funding has no key at Wise: read the transfer first and fund only one that still waits.
The transfer goes to the recipient the approval snapshotted (Payout.approved_recipient_id), never
to the affiliate's live one; a payout without that snapshot is failed with a critical beacon.
No transaction is held open across an HTTP call: each result is recorded in its own short,
guarded UPDATE (status = processing and the same attempt), on the attempt's own PayoutAttempt row
(kept for ever: a retry never loses a transfer id) and on the payout's current-attempt columns.
"""

from datetime import timedelta
from enum import StrEnum

import structlog
from django.conf import settings
from django.utils import timezone

from audit.beacons import emit_beacon
from audit.transitions import apply_transition
from core.actors import SystemActor
from core.claims import claim, complete, release
from core.enqueue import enqueue
from core.errors import Conflict
from core.leases import CallChain, httpx_attempt_timeout, worst_case
from core.transactions import atomic
from payouts.clients.wise import WAITING_FOR_FUNDING, WiseClient, WiseRefused, WiseUnavailable, wise_client
from payouts.keys import dispatch_claim_key, wise_transaction_id
from payouts.models import WISE_FAILED_STATES, Payout, PayoutAttempt, PayoutStatus
from payouts.selectors import payouts_to_redispatch
from payouts.services import books
from payouts.services.attempts import current_attempt
from payouts.services.review import transition_changes
from payouts.task_names import DISPATCH_WISE_TRANSFER

logger = structlog.get_logger(__name__)
DISPATCHER = SystemActor("task:dispatch_wise_transfer")
SWEEPER = SystemActor("task:redispatch_stuck_payouts")
# Critical: an approved payout reached the dispatch with no approved recipient (refused, not sent).
NO_RECIPIENT_SNAPSHOT = "payout_recipient_not_snapshotted"
# The dispatch lease must outlast the worst case of one dispatch, or a second worker could take
# over a live one: 4 calls (quote, transfer, read, fund), each bounded by WISE_TIMEOUT_SECONDS per
# httpx phase (connect, write, read: a fresh connection per call, so no pool wait), the client
# retrying none of them (the task retries, under a new claim), plus core.leases' margin. Short
# enough that the sweeper takes over a dead worker's payout within minutes at the default 10 s
# timeout (3 min).
DISPATCH_CALLS = 4
HTTP_PHASES = 3
CLIENT_RETRIES = 0


def dispatch_call_chain() -> CallChain:
    return CallChain(
        what="a Wise dispatch (quote, transfer, read, fund)",
        calls=DISPATCH_CALLS,
        attempt_timeout=httpx_attempt_timeout(settings.WISE_TIMEOUT_SECONDS, phases=HTTP_PHASES),
        attempts=1 + CLIENT_RETRIES,
    )


def dispatch_lease() -> timedelta:
    """Derived from settings.WISE_TIMEOUT_SECONDS each time, so a changed timeout changes the lease."""
    return worst_case(dispatch_call_chain())


class DispatchOutcome(StrEnum):
    FUNDED = "funded"
    ALREADY_FUNDED = "already_funded"
    NOT_DISPATCHABLE = "not_dispatchable"  # rejected, cancelled, paid ...: nothing to send
    BUSY = "busy"  # another worker holds this attempt's dispatch claim
    ABORTED = "aborted"  # the payout left processing (or changed attempt) mid-dispatch
    FAILED = "failed"  # Wise refused: moved to failed with its reason
    FUNDING_REFUSED = "funding_refused"  # nothing was funded: the sweeper tries again later


class FundingOutcomeUnknown(WiseUnavailable):
    """The funding request got no answer: Wise may have funded. Keep the claim, read before retrying."""


class FundingRefused(Exception):
    """Wise said no to the funding (e.g. our balance is short): nothing moved, safe to try again."""


class DispatchAborted(Exception):
    """The payout is no longer processing this attempt: stop talking to Wise for it."""


def dispatch_wise_transfer(*, payout_id: int) -> DispatchOutcome:
    """Send an approved payout's money through Wise: at most one transfer and one funding per attempt.

    Raises WiseUnavailable (network error, 408/429 or 5xx) for the task to retry with backoff; the retry
    reuses the recorded quote and the same customerTransactionId.
    """
    payout = _start_processing(payout_id)
    if payout is None:
        return DispatchOutcome.NOT_DISPATCHABLE
    if payout.wise_funded_at is not None:
        return DispatchOutcome.ALREADY_FUNDED
    held = claim(dispatch_claim_key(payout_id=payout.pk, attempt=payout.attempt), lease=dispatch_lease())
    if not held.won:
        logger.info("payout_dispatch_busy", payout_id=payout.pk, attempt=payout.attempt)
        return DispatchOutcome.BUSY
    try:
        outcome = _send(wise_client(), payout)
    except FundingOutcomeUnknown:
        raise  # keep the claim: nobody funds again before its lease runs out and a read comes first
    except DispatchAborted:
        release(held)
        return DispatchOutcome.ABORTED
    except FundingRefused as exc:
        release(held)  # certainly not funded: the sweeper's next run reads and funds
        emit_beacon("payout_funding_refused", object_id=payout.pk, reason=str(exc))
        return DispatchOutcome.FUNDING_REFUSED
    except BaseException:
        release(held)  # quote, transfer (same customerTransactionId) and read-then-fund are safe to repeat
        raise
    complete(held)
    return outcome


def redispatch_stuck_payouts() -> int:
    """Beat sweeper: re-enqueue approved payouts whose on-commit enqueue was lost and processing
    payouts whose worker died before funding. Safe to run concurrently: dispatch is idempotent."""
    ids = list(payouts_to_redispatch().values_list("pk", flat=True))
    for payout_id in ids:
        logger.info("payout_redispatch", payout_id=payout_id, actor=SWEEPER.label)
        enqueue(DISPATCH_WISE_TRANSFER, payout_id)
    return len(ids)


def _start_processing(payout_id: int) -> Payout | None:
    """approved -> processing (the claim on dispatch), or resume a processing payout."""
    with atomic():
        payout = Payout.objects.select_related("affiliate").filter(pk=payout_id).first()
        if payout is None:
            return None
        if payout.status == PayoutStatus.APPROVED:
            try:
                apply_transition(
                    instance=payout,
                    transition="start_processing",
                    actor=DISPATCHER,
                    changes=transition_changes("start_processing", actor=DISPATCHER),
                )
            except Conflict:
                # Someone moved it first: a cancel (stop) or another delivery of this task (which
                # now holds or will take the dispatch claim). Look at what it is now.
                payout.refresh_from_db()
        if payout.status == PayoutStatus.PROCESSING:
            attempt = current_attempt(payout)
            if attempt.dispatched_at is None:
                PayoutAttempt.objects.filter(pk=attempt.pk).update(dispatched_at=payout.dispatched_at or timezone.now())
    return payout if payout.status == PayoutStatus.PROCESSING else None


def _send(client: WiseClient, payout: Payout) -> DispatchOutcome:
    if payout.approved_recipient_id is None:
        return _refuse_unsnapshotted(payout)
    if not payout.approved_recipient_id:
        return _fail(payout, "The affiliate had no Wise recipient account when the payout was approved.")
    try:
        quote_id = payout.wise_quote_id or _create_quote(client, payout)
        transfer_id = payout.wise_transfer_id or _create_transfer(client, payout, quote_id)
    except WiseRefused as exc:
        # A 4xx before any transfer exists: no money can have moved; a human retries (new attempt).
        return _fail(payout, f"Wise refused: {exc.code or exc.status}: {exc.message}")
    return _fund_once(client, payout, transfer_id)


def _create_quote(client: WiseClient, payout: Payout) -> str:
    quote = client.create_quote(
        source_currency=payout.currency, target_currency=payout.currency, target_amount=payout.amount
    )
    _record(payout, wise_quote_id=quote.id)
    return quote.id


def _create_transfer(client: WiseClient, payout: Payout, quote_id: str) -> str:
    transfer = client.create_transfer(
        target_account=payout.approved_recipient_id or "",  # the approved recipient, never the live one
        quote_id=quote_id,
        customer_transaction_id=wise_transaction_id(payout_id=payout.pk, attempt=payout.attempt),
        reference=f"Payout {payout.pk}",
    )
    _record(payout, wise_transfer_id=transfer.id)
    return transfer.id


def _fund_once(client: WiseClient, payout: Payout, transfer_id: str) -> DispatchOutcome:
    status = client.get_transfer(transfer_id=transfer_id).status
    if status != WAITING_FOR_FUNDING:
        # Funded by an earlier run whose answer was lost, or cancelled at Wise: never fund twice.
        if status not in WISE_FAILED_STATES:
            _record(payout, wise_funded_at=timezone.now())
        logger.info("payout_funding_skipped", payout_id=payout.pk, transfer_id=transfer_id, wise_status=status)
        return DispatchOutcome.ALREADY_FUNDED
    try:
        funding = client.fund_transfer(transfer_id=transfer_id)
    except WiseUnavailable as exc:
        raise FundingOutcomeUnknown(exc.message, status=exc.status) from exc
    except WiseRefused as exc:
        raise FundingRefused(f"{exc.code or exc.status}: {exc.message}") from exc
    if not funding.completed:  # Wise may answer 200 with status REJECTED
        raise FundingRefused(funding.error_code or funding.status)
    _record(payout, wise_funded_at=timezone.now())
    logger.info("payout_funded", payout_id=payout.pk, transfer_id=transfer_id)
    return DispatchOutcome.FUNDED


# The payout's current-attempt column -> the attempt row's column.
ATTEMPT_COLUMNS = {
    "wise_quote_id": "wise_quote_id",
    "wise_transfer_id": "wise_transfer_id",
    "wise_funded_at": "funded_at",
}


def _record(payout: Payout, **values: object) -> None:
    """Write a Wise result on this attempt's row (always: what Wise made for an attempt is a fact
    kept for ever, so its later events are recognised), and on the payout's current-attempt
    columns only while this attempt is still the one being processed. Lock order: the attempt row,
    then the payout row, as the webhook takes them."""
    with atomic():
        attempt = current_attempt(payout)
        PayoutAttempt.objects.filter(pk=attempt.pk).update(**{ATTEMPT_COLUMNS[k]: v for k, v in values.items()})
        updated = Payout.objects.filter(pk=payout.pk, status=PayoutStatus.PROCESSING, attempt=payout.attempt).update(
            **values
        )
    if updated != 1:
        raise DispatchAborted(payout.pk)
    for name, value in values.items():
        setattr(payout, name, value)


def _refuse_unsnapshotted(payout: Payout) -> DispatchOutcome:
    """No approval snapshotted a recipient (the migration gave every approved payout one): paying
    the affiliate's live recipient would be paying an account nobody approved. Fail it (no money
    moved; a transfer already made is never funded, and the retry waits for it to be cancelled)
    with a critical beacon; a retry goes back to review, whose approval writes the snapshot."""
    emit_beacon(NO_RECIPIENT_SNAPSHOT, object_id=payout.pk, attempt=payout.attempt)
    return _fail(payout, "No approved Wise recipient was recorded for this payout: re-review it before it is sent.")


def _fail(payout: Payout, reason: str) -> DispatchOutcome:
    logger.warning("payout_dispatch_failed", payout_id=payout.pk, reason=reason)
    with atomic():
        try:
            apply_transition(
                instance=payout,
                transition="mark_failed",
                actor=DISPATCHER,
                expected=PayoutStatus.PROCESSING,
                reason=reason,
                # The refusal is the provider's (or the dispatch's) word, not the reviewer's note.
                changes={"provider_status": reason[:500], "provider_status_at": timezone.now()},
            )
        except Conflict:
            return DispatchOutcome.ABORTED  # settled by someone else meanwhile
        books.void_payout_reservation(payout)  # no transfer was made: the hold is released
    return DispatchOutcome.FAILED
