"""Who may review a payout: ONE rule, asked by every door.

The services (approve, reject, cancel, retry / re-open, "PUT status", cancel at Wise) call
`ensure_may_review` before they touch anything, so the API, the admin's change page, its bulk
actions and any future door refuse the same people with the same message. The API's permission
check (core.permissions.ActorAuthority, before the payout is even read) and the transition
declarations in payouts.models (`permission=may_review`, which also draws the admin's buttons and
the API's `allowed_transitions`) call the same `review_refusal`; nothing else decides.

The rule:
1. Reviewers are super-admins: active and superuser (core.permissions.is_super_admin), as the
   product promises. A staff user is not, whatever model permissions it holds; a system job is
   not either (jobs move payouts only through their own system transitions, never a review).
2. Segregation of duties: nobody reviews a payout they requested (`requested_by`) or whose payee
   they are (`affiliate.user`). This covers every review decision, not only approve:
   - reject, cancel, retry and re-open are decisions about the payee's own money too (a retry or
     re-open puts the payout back in review with a new reservation; a cancel stops a transfer);
     an auditor must never find the payee in the decision column of their own payout;
   - a rule without exceptions is one every door applies identically; the incident that led
     here was two doors disagreeing;
   - an affiliate who wants a request withdrawn asks another reviewer (or gets a withdraw action
     of its own, audited as such), rather than deciding as a reviewer.
Dual approval (a second, different super-admin above a threshold) is not an authority question
but a count of approvals: payouts.services.approvals.
"""

from typing import TYPE_CHECKING, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Model

from audit.beacons import emit_beacon
from core.actors import SystemActor
from core.errors import PermissionDenied
from core.permissions import is_super_admin
from payouts.errors import PayoutErrorCode

if TYPE_CHECKING:
    from payouts.models import Payout

SUPER_ADMINS_ONLY = "Only super-admins may review payouts."
OWN_PAYOUT = "You requested this payout or are its payee: another super-admin must review it."
FORBIDDEN_BEACON = "payout_transition_forbidden"  # counted with the other refusals on the dashboard


def review_refusal(*, actor: object, payout: "Payout | None" = None) -> PermissionDenied | None:
    """THE rule: None if `actor` may review `payout` (without a payout: may review payouts at
    all, e.g. the API before it reads the row), else the refusal to raise."""
    if not isinstance(actor, AbstractBaseUser) or not is_super_admin(actor):
        return PermissionDenied(SUPER_ADMINS_ONLY, code=PayoutErrorCode.SUPER_ADMINS_ONLY)
    if payout is not None and actor.pk in (payout.requested_by_id, payout.affiliate.user_id):
        return PermissionDenied(OWN_PAYOUT, code=PayoutErrorCode.OWN_PAYOUT)
    return None


def ensure_may_review(*, actor: object, payout: "Payout | None" = None) -> None:
    """Raise the rule's PermissionDenied (403 in the API, a message in the admin), with a beacon."""
    refusal = review_refusal(actor=actor, payout=payout)
    if refusal is not None:
        emit_beacon(
            FORBIDDEN_BEACON,
            object_id=payout.pk if payout is not None else None,
            actor=_label(actor),
            code=refusal.code,
        )
        raise refusal


def may_review(payout: Model, user: object) -> bool:
    """The transition declarations' permission (django-fsm calls it with (instance, user)): the
    same rule, as a yes/no, without a beacon (it is asked to draw buttons, not to act)."""
    return review_refusal(actor=user, payout=cast("Payout", payout)) is None


def _label(actor: object) -> str:
    if isinstance(actor, SystemActor):
        return actor.label
    if isinstance(actor, AbstractBaseUser):
        return actor.get_username()
    return "anonymous"
