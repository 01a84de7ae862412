"""Super-admin review: approve, reject, cancel, retry, and "PUT status" (with expected_status).

Before anything is read for writing: the reason is validated (payouts.reasons: 400, nothing
written; a reject must give one, 400 reason_required) and payouts.authority decides who may
review this payout (403: super-admins only, never the requester or the payee). Every door (API,
admin page, bulk action) comes through here.

Every decision is one guarded transition (audit.transitions): legality from the declarations in
payouts.models (422), the race guard `UPDATE ... WHERE status = <what the reviewer saw>` (409,
naming who got there first), the transition permission for user actors (403, the same authority
rule), the audit row in the same transaction, and the Wise dispatch scheduled on commit only
when an approval won; the approve's UPDATE also writes the affiliate's Wise recipient as the
payout's `approved_recipient_id`, the only account the dispatch pays. Above the dual-approval
threshold an approval is first recorded (payouts.services.approvals) and only the second, by
another super-admin, is the transition.

The books (payouts.services.books) move in the same transaction, right after the won transition
(lock order: payout row, then the affiliate's account row): reject / cancel void the attempt's
reservation, retry / re-open reserve anew for the new attempt (422 insufficient_balance if the
balance no longer covers it), and approve re-checks the account under a row lock (422 if a
reversal took it below zero since the request). A refusal rolls the transition back with it.
"""

import functools
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from django.db.models import F
from django.utils import timezone

from audit.selectors import history_for
from audit.transitions import apply_transition, apply_transition_to, transition_name
from core.actors import Actor, actor_label, actor_user
from core.enqueue import enqueue
from core.errors import Conflict, NotFound
from core.transactions import atomic
from payouts.authority import ensure_may_review
from payouts.errors import PayoutConflict
from payouts.models import Payout, PayoutStatus
from payouts.reasons import clean_decision_reason
from payouts.services import approvals, books
from payouts.task_names import DISPATCH_WISE_TRANSFER

REVIEW_DECISIONS = frozenset({"approve", "reject", "cancel"})
# A re-review starts from a clean slate: the next approval dispatches a fresh Wise transfer.
_WISE_RESET = {
    "wise_quote_id": "",
    "wise_transfer_id": "",
    "dispatched_at": None,
    "wise_funded_at": None,
    "wise_state": "",
    "wise_state_at": None,
    "provider_status": "",
    "provider_status_at": None,
    "reviewed_by": None,
    "reviewed_at": None,
}


def approve_payout(*, payout_id: int, actor: Actor, expected_status: str | None = None, reason: str = "") -> Payout:
    """requested -> approved (KYC verified), then the Wise dispatch on commit: money moves only
    for the one reviewer whose guarded UPDATE matched the row. Above the dual-approval threshold
    the first approval is only recorded (the payout stays requested, "1 of 2 approvals"); the
    second, by a different super-admin, is the transition."""
    return review_payout(
        payout_id=payout_id, transition="approve", actor=actor, expected_status=expected_status, reason=reason
    )


def reject_payout(*, payout_id: int, actor: Actor, expected_status: str | None = None, reason: str = "") -> Payout:
    """requested -> rejected, and the reservation voided. The reason is required (the affiliate
    and the next reviewer read it): an empty or blank one is a ValidationError, nothing written."""
    return review_payout(
        payout_id=payout_id, transition="reject", actor=actor, expected_status=expected_status, reason=reason
    )


def cancel_payout(*, payout_id: int, actor: Actor, expected_status: str | None = None, reason: str = "") -> Payout:
    """approved -> cancelled: stops the dispatch if it lands before the dispatch's own guarded
    approved -> processing; after that it gets 409 and the transfer must be cancelled at Wise."""
    return review_payout(
        payout_id=payout_id, transition="cancel", actor=actor, expected_status=expected_status, reason=reason
    )


def retry_payout(*, payout_id: int, actor: Actor, expected_status: str | None = None, reason: str = "") -> Payout:
    """failed -> requested, or cancelled -> requested (re-review), each with attempt + 1: a new
    Wise customerTransactionId and a NEW reservation in the books for the new attempt (the old
    one was voided), refused with 422 insufficient_balance when the balance no longer covers it
    (e.g. the affiliate requested the freed money again meanwhile)."""
    seen = expected_status or _get(payout_id).status
    # A named action acts on its source state: a row that is neither failed nor cancelled is
    # treated as "moved on since the reviewer saw it failed" (409), like approve on a rejected row.
    name = "reopen" if seen == PayoutStatus.CANCELLED else "retry"
    return review_payout(
        payout_id=payout_id, transition=name, actor=actor, expected_status=expected_status, reason=reason
    )


def review_payout(
    *, payout_id: int, transition: str, actor: Actor, expected_status: str | None = None, reason: str = ""
) -> Payout:
    """Apply the named transition from the state the reviewer saw (default: its source state).
    An approval that needs a second approver returns the payout still requested. A reject without
    a reason (empty or blank) is refused here, for every door, before anything is read or written."""
    reason = clean_decision_reason(transition=transition, reason=reason)
    with atomic():
        payout = _get(payout_id)
        ensure_may_review(actor=actor, payout=payout)
        if transition == "approve" and approvals.needs_dual_approval(payout):
            payout, enough = approvals.record_approval(
                payout_id=payout.pk, actor=actor, expected_status=expected_status, reason=reason
            )
            if not enough:
                return payout
        try:
            done = apply_transition(
                instance=payout,
                transition=transition,
                actor=actor,
                expected=expected_status,
                reason=reason,
                changes={
                    **transition_changes(transition, actor=actor, reason=reason),
                    **approval_snapshot(transition, payout),
                },
                on_commit=side_effect_of(transition, payout_id=payout.pk),
            )
        except Conflict as exc:
            raise payout_conflict(payout_id=payout.pk, exc=exc) from exc
        book_transition(transition, payout=done)
        if transition == "reject":
            approvals.void_pending_approvals(payout=done, why=f"rejected by {actor_label(actor)}")
        return done


def set_payout_status(*, payout_id: int, status: str, expected_status: str, actor: Actor, reason: str = "") -> Payout:
    """PUT {"status", "expected_status"}: the move the declarations allow from what the reviewer
    saw, as the named action (same authority, same dual approval); an unknown state (400) or a
    move nobody declared (422) is refused before anything is written."""
    name = transition_name(Payout, source=expected_status, target=status)
    if name is None:
        _refuse_undeclared_move(payout_id=payout_id, status=status, expected_status=expected_status, actor=actor)
    return review_payout(
        payout_id=payout_id, transition=name, actor=actor, expected_status=expected_status, reason=reason
    )


def _refuse_undeclared_move(*, payout_id: int, status: str, expected_status: str, actor: Actor) -> NoReturn:
    """No move is declared from what the reviewer saw to `status`: the helper refuses it with its
    own error and beacon (400 unknown state, 422 illegal move), after the same authority check."""
    payout = _get(payout_id)
    ensure_may_review(actor=actor, payout=payout)
    apply_transition_to(instance=payout, target=status, expected=expected_status, actor=actor)
    raise AssertionError(f"no transition is declared for {expected_status} -> {status}, yet none was refused")


def transition_changes(transition: str, *, actor: Actor, reason: str = "") -> Mapping[str, Any]:
    """The columns a transition writes in the same guarded UPDATE as the status."""
    now = timezone.now()
    if transition in REVIEW_DECISIONS:
        return {"reviewed_by": actor_user(actor), "reviewed_at": now, "reason": reason}
    if transition == "start_processing":
        return {"dispatched_at": now}
    if transition == "retry":
        return {**_WISE_RESET, "attempt": F("attempt") + 1, "reason": reason}
    if transition == "reopen":
        # A new attempt too: its reservation needs its own stable id (the cancelled attempt's was
        # voided, and a transfer id is never reused). No Wise transfer exists for a cancelled
        # attempt (cancel wins only before the dispatch's approved -> processing), so the new
        # customerTransactionId cannot orphan one.
        return {**_WISE_RESET, "attempt": F("attempt") + 1, "reason": reason}
    return {"reason": reason} if reason else {}


def approval_snapshot(transition: str, payout: Payout) -> Mapping[str, Any]:
    """What a won approve fixes for the dispatch, in its own guarded UPDATE (no extra statement):
    the Wise recipient as this review read it (the dual-approval path: as the approvals' snapshots
    were checked against it). A retry or re-open goes back to review, so its approval snapshots anew."""
    if transition != "approve":
        return {}
    return {"approved_recipient_id": payout.affiliate.wise_recipient_id}


def book_transition(transition: str, *, payout: Payout) -> None:
    """The books' side of a won transition, in its transaction and after its guarded UPDATE (lock
    order: payout row, then account row). A refusal raises and rolls the transition back."""
    if transition == "approve":
        books.ensure_payable_not_negative(payout)
    elif transition in ("reject", "cancel", "mark_failed"):
        books.void_payout_reservation(payout)
    elif transition in ("retry", "reopen"):
        books.reserve_next_attempt(payout)
    elif transition == "mark_paid":
        books.post_payout(payout)


def side_effect_of(transition: str, *, payout_id: int) -> Callable[[], object] | None:
    """Only a won approve (or a manual approved -> processing) dispatches to Wise, after commit."""
    if transition not in ("approve", "start_processing"):
        return None
    return functools.partial(enqueue, DISPATCH_WISE_TRANSFER, payout_id)


def payout_conflict(*, payout_id: int, exc: Conflict) -> PayoutConflict:
    """The 409 in the reviewer's terms: who decided (the last person in the audit trail), not the
    job that moved the payout on after them."""
    decision = history_for(Payout(pk=payout_id)).exclude(actor=None).values("actor_label", "target", "at").first()
    return PayoutConflict.from_conflict(exc, decision=decision)


def _get(payout_id: int) -> Payout:
    payout = Payout.objects.select_related("affiliate").filter(pk=payout_id).first()
    if payout is None:
        raise NotFound(f"Payout #{payout_id} does not exist.")
    return payout
