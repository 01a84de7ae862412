"""Dual approval: above PAYOUT_DUAL_APPROVAL_THRESHOLD (payouts.thresholds) a payout moves to
approved only on the approval of a second, different super-admin.

Each approval is a PayoutApproval row (the trail: who, when, with which reason and request id,
and what they saw). The first is recorded and the payout stays requested ("1 of 2 approvals");
the second is recorded and then applies the ordinary guarded transition requested -> approved
(payouts.services.review: legality, guarded UPDATE, audit row, the books' re-check, the Wise
dispatch on commit).

Safety layers:
- one row lock per payout (`_lock`, SELECT ... FOR UPDATE of the payout row; the only payout row
  lock in the app, taken before the books' account row lock, the order every payouts service
  keeps): approvals of one payout queue, so two first approvals can never both see "no approval
  yet" and leave a payout with two approvals and no transition. A second approver who queued
  behind the winning one reads the row after the winner committed, finds it moved on and records
  nothing: the guarded transition then reports the 409 naming the winner.
- database uniqueness: one live approval per (payout, approver) (`payout_approval_once`); the same
  super-admin twice is refused first (already_approved), the UNIQUE is the backstop.
- the snapshot: an approval counts only while the payout has the attempt, amount, currency and
  Wise recipient it approved (payouts.selectors.approval_matches). Anything else is voided, with
  why, before a new approval is counted; a reject voids the pending ones. So approvals never
  carry over to a changed payout or a new attempt (retry, re-open).
Who may approve at all (a super-admin, never the requester or payee) is payouts.authority, asked
by the caller before this module runs.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog
from django.utils import timezone

from audit.transitions import check_transition
from core.actors import Actor, actor_label, actor_user
from core.context import current_correlation_id
from core.errors import NotFound, PermissionDenied
from payouts.authority import SUPER_ADMINS_ONLY
from payouts.errors import PayoutErrorCode
from payouts.models import Payout, PayoutApproval, PayoutStatus
from payouts.selectors import approval_matches, live_approvals_query
from payouts.services import books
from payouts.thresholds import DUAL, approvals_required

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = structlog.get_logger(__name__)
ALREADY_APPROVED = "You have already approved this payout: a second, different super-admin must approve it."


def needs_dual_approval(payout: Payout) -> bool:
    return approvals_required(amount=payout.amount, currency=payout.currency) >= DUAL


def record_approval(*, payout_id: int, actor: Actor, expected_status: str | None, reason: str) -> tuple[Payout, bool]:
    """Inside the caller's transaction: record `actor`'s approval of a payout that needs two, and
    say whether it is enough to approve. Returns (the payout as locked, enough).

    `enough` is also True, with nothing recorded, when the row is no longer in the state the
    reviewer saw (the transition's guarded UPDATE then reports who moved it: 409) or when one
    approval now covers it. Raises PermissionDenied (already_approved), and the transition's own
    refusals (IllegalTransition, e.g. kyc_not_verified) and the books' (insufficient_balance)."""
    payout = _lock(payout_id)
    seen = expected_status or PayoutStatus.REQUESTED
    if payout.status != seen or not needs_dual_approval(payout):
        return payout, True
    approver = actor_user(actor)
    if approver is None:  # payouts.authority refused it already: a job never approves
        raise PermissionDenied(SUPER_ADMINS_ONLY, code=PayoutErrorCode.SUPER_ADMINS_ONLY)
    approvals = _counted_approvals(payout)
    if any(a.approver_id == approver.pk for a in approvals):
        raise PermissionDenied(ALREADY_APPROVED, code=PayoutErrorCode.ALREADY_APPROVED)
    check_transition(instance=payout, transition="approve", actor=actor, expected=seen)
    enough = len(approvals) + 1 >= DUAL
    if not enough:
        books.ensure_payable_not_negative(payout)  # refuse now what the final approval would refuse
    _insert(payout, approver, reason)
    logger.info("payout_approval_recorded", payout_id=payout.pk, actor=actor_label(actor), given=len(approvals) + 1)
    return payout, enough


def void_pending_approvals(*, payout: Payout, why: str) -> int:
    """The round ended without an approval (a reject): its approvals stop counting, on the record."""
    return PayoutApproval.objects.filter(payout=payout, voided_at__isnull=True).update(
        voided_at=timezone.now(), void_reason=why[:200]
    )


def _lock(payout_id: int) -> Payout:
    payout = Payout.objects.select_for_update(of=("self",)).select_related("affiliate").filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"Payout #{payout_id} does not exist.")
    return payout


def _counted_approvals(payout: Payout) -> Sequence[PayoutApproval]:
    """The live approvals that still count; the others are voided now, saying what changed."""
    live = list(live_approvals_query().filter(payout=payout))
    stale = [a for a in live if not approval_matches(a, payout)]
    for approval in stale:
        PayoutApproval.objects.filter(pk=approval.pk).update(
            voided_at=timezone.now(), void_reason=_changed(approval, payout)
        )
    return [a for a in live if a not in stale]


def _changed(approval: PayoutApproval, payout: Payout) -> str:
    if approval.attempt != payout.attempt:
        return f"attempt {payout.attempt} started after this approval of attempt {approval.attempt}"
    if (approval.amount, approval.currency) != (payout.amount, payout.currency):
        return f"the amount changed from {approval.amount} {approval.currency} to {payout.amount} {payout.currency}"
    return "the affiliate's Wise recipient changed after this approval"


def _insert(payout: Payout, approver: "User", reason: str) -> PayoutApproval:
    return PayoutApproval.objects.create(
        payout=payout,
        approver=approver,
        attempt=payout.attempt,
        amount=payout.amount,
        currency=payout.currency,
        wise_recipient_id=payout.affiliate.wise_recipient_id,
        reason=reason,
        correlation_id=current_correlation_id(),
    )
