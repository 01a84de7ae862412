"""What Wise says about a transfer: webhooks, the processing poller, and "cancel at Wise".

Webhooks are at least once and unordered. Three layers make a delivery count once:
1. the (provider, event id) UNIQUE row in audit.WebhookEvent: an exact replay is a no-op;
2. ordering by data.occurred_at: one conditional UPDATE keeps only a newer state, so a stale
   delivery changes nothing (and "statuses can move back" is reported, not applied backwards);
3. the guarded processing -> paid | failed transition: paid has no way out, and the poller and a
   webhook racing on the same payout produce one transition (the loser's Conflict is "someone
   else settled it").
"""

from datetime import datetime
from enum import StrEnum

import structlog
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from audit.beacons import emit_beacon
from audit.transitions import apply_transition
from core.actors import Actor, SystemActor, actor_label
from core.errors import BusinessRuleViolation, Conflict, IllegalTransition, NotFound, PermissionDenied
from core.transactions import atomic
from payouts.clients.wise import WiseRefused, WiseTransfer, WiseUnavailable, wise_client
from payouts.errors import PayoutErrorCode
from payouts.models import REVIEW_PERMISSION, WISE_FAILED_STATES, WISE_PAID_STATES, Payout, PayoutStatus
from payouts.selectors import payouts_to_poll
from webhooks.stripe_events import claim_webhook_event

logger = structlog.get_logger(__name__)
WEBHOOK = SystemActor("webhook:wise")
POLLER = SystemActor("task:poll_processing_payouts")


class SettleOutcome(StrEnum):
    APPLIED = "applied"  # processing -> paid | failed
    RECORDED = "recorded"  # a newer state, with nothing to move (e.g. funds_converted)
    STALE = "stale"  # older than the state we have
    DUPLICATE = "duplicate"  # this exact event was processed before
    SETTLED_ALREADY = "settled_already"  # someone else moved the payout first
    UNKNOWN_TRANSFER = "unknown_transfer"


def record_wise_state(*, transfer_id: str, state: str, occurred_at: datetime) -> SettleOutcome:
    """Apply one `transfers#state-change` delivery (already signature-checked)."""
    with atomic():
        event_id = f"transfer:{transfer_id}:{state}:{occurred_at.isoformat()}"
        if not claim_webhook_event(provider="wise", event_id=event_id, event_type="transfers#state-change"):
            return SettleOutcome.DUPLICATE
        newer = (
            Q(wise_state_at__isnull=True)
            | Q(wise_state_at__lt=occurred_at)
            | (Q(wise_state_at=occurred_at) & ~Q(wise_state=state))
        )
        # One statement: it locks the row, so concurrent deliveries for one transfer queue here.
        if not Payout.objects.filter(newer, wise_transfer_id=transfer_id).update(
            wise_state=state, wise_state_at=occurred_at
        ):
            known = Payout.objects.filter(wise_transfer_id=transfer_id).exists()
            return SettleOutcome.STALE if known else SettleOutcome.UNKNOWN_TRANSFER
        payout = Payout.objects.select_related("affiliate").get(wise_transfer_id=transfer_id)
        return settle(payout, state=state, actor=WEBHOOK, reason=f"Wise: {state} at {occurred_at.isoformat()}")


def settle(payout: Payout, *, state: str, actor: SystemActor, reason: str, **changes: object) -> SettleOutcome:
    """Move a processing payout to paid or failed for a Wise state; call inside a transaction."""
    if state in WISE_PAID_STATES:
        transition = "mark_paid"
    elif state in WISE_FAILED_STATES:
        transition = "mark_failed"
    else:
        return SettleOutcome.RECORDED
    if payout.status == PayoutStatus.PAID and transition == "mark_failed":
        # Paid never goes back (a bounce can come weeks later): a human must look at it.
        emit_beacon("payout_failed_after_paid", object_id=payout.pk, wise_state=state, actor=actor.label)
        return SettleOutcome.RECORDED
    if payout.status != PayoutStatus.PROCESSING:
        return SettleOutcome.SETTLED_ALREADY
    try:
        apply_transition(
            instance=payout,
            transition=transition,
            actor=actor,
            expected=PayoutStatus.PROCESSING,
            reason=reason,
            changes={"reason": reason, **changes},
        )
    except Conflict:
        return SettleOutcome.SETTLED_ALREADY  # the webhook or the poller got there first
    return SettleOutcome.APPLIED


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
    with atomic():
        payout = Payout.objects.select_related("affiliate").get(pk=payout_id)
        if state not in WISE_PAID_STATES | WISE_FAILED_STATES:
            return SettleOutcome.RECORDED
        # Stamp the state with the time we saw it, so an older webhook arriving later is stale.
        return settle(
            payout,
            state=state,
            actor=POLLER,
            reason=f"Wise (polled): {state}",
            wise_state=state,
            wise_state_at=timezone.now(),
        )


def cancel_at_wise(*, payout_id: int, actor: Actor) -> WiseTransfer:
    """Ask Wise to cancel a processing payout's transfer. Wise refuses once the funds are converted
    (409 transfer.cancellation.not.allowed): its reason is raised for the reviewer. On success the
    `cancelled` webhook (or the poller) moves the payout to failed; retry then re-opens review."""
    if isinstance(actor, AbstractBaseUser) and not actor.has_perm(REVIEW_PERMISSION):
        raise PermissionDenied(f"{actor_label(actor)} may not cancel payouts at Wise.")
    payout = _processing_with_transfer(payout_id)
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


def _processing_with_transfer(payout_id: int) -> Payout:
    payout = Payout.objects.filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"Payout #{payout_id} does not exist.")
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
