"""Revoking a discount: the guarded live -> revoked transition, then, on commit, the code is
deactivated at Stripe. A lost on_commit is repaired by the apply_loyalty tick (close_revoked_codes)."""

import functools

import structlog
from django.utils import timezone

from audit.transitions import apply_transition
from core.actors import Actor
from core.enqueue import enqueue
from core.errors import Conflict, NotFound
from core.transactions import atomic
from loyalty.clients.stripe import StripeError
from loyalty.models import LIVE_STATUSES, DiscountStatus, LoyaltyDiscount, Subscription
from loyalty.selectors import revoked_discounts_open_at_stripe
from loyalty.services.stripe_codes import deactivate_promotion_code, find_own_code
from loyalty.task_names import CLOSE_REVOKED_CODE

logger = structlog.get_logger(__name__)
REVOKE_RETRIES = 3


def revoke_discount(
    *, discount_id: int, actor: Actor, expected_status: str | None = None, reason: str = ""
) -> LoyaltyDiscount:
    """Revoke one discount from the state the actor saw (admin action, API).

    Safety: state machine (only live rows), race guard (Conflict if it moved since the actor looked),
    the Stripe deactivation scheduled on commit of the win only, with a stable key.
    """
    with atomic():
        discount = LoyaltyDiscount.objects.filter(pk=discount_id).first()
        if discount is None:
            raise NotFound(f"Loyalty discount #{discount_id} does not exist.")
        _revoke(discount, actor=actor, expected=expected_status or discount.status, reason=reason)
    return discount


def revoke_live_discounts(*, subscription: Subscription, actor: Actor, reason: str) -> int:
    """Revoke every live discount of a subscription; runs inside the caller's transaction (the
    webhook's event claim). A row that a tick moves meanwhile (pending -> applied) is revoked from
    its new state; a row already revoked is left alone."""
    revoked = 0
    for discount in LoyaltyDiscount.objects.filter(subscription=subscription, status__in=LIVE_STATUSES):
        for _ in range(REVOKE_RETRIES):
            try:
                _revoke(discount, actor=actor, expected=discount.status, reason=reason)
            except Conflict:
                discount.refresh_from_db()
                if discount.status in LIVE_STATUSES:
                    continue
            else:
                revoked += 1
            break
    return revoked


def close_revoked_code(*, discount_id: int) -> bool:
    """Make sure a revoked discount's code cannot be redeemed. Idempotent; False if Stripe failed
    (the error is recorded and the next tick tries again)."""
    discount = LoyaltyDiscount.objects.select_related("subscription").get(pk=discount_id)
    if discount.status != DiscountStatus.REVOKED or discount.stripe_closed_at is not None:
        return False
    seen_code_id = closed_code_id = discount.stripe_promotion_code_id
    try:
        if seen_code_id:
            deactivate_promotion_code(seen_code_id)
        elif (found := find_own_code(discount)) is not None:
            # Revoked while pending: a crashed or concurrent attempt may still have created it.
            deactivate_promotion_code(found.id)
            closed_code_id = found.id
    except StripeError as exc:
        LoyaltyDiscount.objects.filter(pk=discount.pk).update(last_error=exc.describe()[:2000])
        logger.warning("loyalty_code_close_failed", discount_id=discount.pk, error=exc.describe())
        return False
    # Only if no attempt recorded a code id meanwhile: that attempt closes its own code.
    LoyaltyDiscount.objects.filter(
        pk=discount.pk, stripe_closed_at__isnull=True, stripe_promotion_code_id=seen_code_id
    ).update(stripe_closed_at=timezone.now(), stripe_promotion_code_id=closed_code_id)
    return True


def close_revoked_codes(*, limit: int) -> int:
    ids = list(revoked_discounts_open_at_stripe(limit=limit).values_list("pk", flat=True))
    return sum(close_revoked_code(discount_id=pk) for pk in ids)


def close_code_of_revoked_attempt(*, discount_id: int, promotion_code_id: str) -> None:
    """An attempt created the code, then found its row revoked: record the code and close it."""
    LoyaltyDiscount.objects.filter(pk=discount_id, status=DiscountStatus.REVOKED).update(
        stripe_promotion_code_id=promotion_code_id, stripe_closed_at=None
    )
    close_revoked_code(discount_id=discount_id)


def revoke_without_closing(*, discount: LoyaltyDiscount, actor: Actor, reason: str) -> None:
    """For a caller that deactivates the code itself right after its commit (the backfill); the
    tick's sweep of revoked rows is still behind it."""
    _revoke(discount, actor=actor, expected=discount.status, reason=reason, close_on_commit=False)


def _revoke(
    discount: LoyaltyDiscount, *, actor: Actor, expected: str, reason: str, close_on_commit: bool = True
) -> None:
    apply_transition(
        instance=discount,
        transition="revoke",
        actor=actor,
        expected=expected,
        reason=reason,
        changes={"revoked_at": timezone.now()},
        on_commit=functools.partial(enqueue, CLOSE_REVOKED_CODE, discount.pk) if close_on_commit else None,
    )
