"""The anniversary discount, granted exactly once per user and anniversary, whatever ticks,
crashes and retries do. The layers of safety, in the order a grant meets them:

1. Pre-flight: a batch query drops subscribers who already hold a live row for the anniversary
   (or whose subscription already had one, even revoked) before any Stripe call.
2. Database uniqueness: the `pending` row is INSERTed before Stripe is called; the partial UNIQUE
   (user, anniversary) over live rows makes a concurrent tick's INSERT fail: IntegrityError,
   counted as `already_processed`, never raised. The insert holds the subscription's row lock, so
   a cancellation either commits before it (nothing inserted) or revokes what it inserted.
3. Attempt guard: `filter(pk, status=pending, attempts=<seen>).update(attempts+1)` lets one worker
   at a time call Stripe for a row; a row left pending by a crash is taken over after RESUME_AFTER.
4. Provider idempotency: the Idempotency-Key is derived from user, subscription and anniversary
   only (loyalty.keys), so every retry and later tick replays the first result; past Stripe's
   24-hour window the deterministic code is looked up at Stripe instead of created again, and
   Stripe's uniqueness of active codes refuses a second one anyway.
5. State machine + race guard: pending -> applied through apply_transition; only the winner
   schedules the email, on commit, and the email itself is claimed by discount id.
"""

import functools
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from enum import StrEnum

import structlog
from django.conf import settings
from django.db import IntegrityError
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.beacons import emit_beacon
from audit.transitions import apply_transition
from core.actors import Actor
from core.enqueue import enqueue
from core.errors import Conflict
from core.transactions import atomic
from loyalty import selectors
from loyalty.anniversaries import completed_anniversaries
from loyalty.clients.stripe import StripeError, StripePromotionCode, StripeUnavailable
from loyalty.keys import loyalty_code
from loyalty.models import PRO_PLAN, DiscountStatus, LoyaltyDiscount, Subscription, SubscriptionStatus
from loyalty.services.emails import resend_missing_emails
from loyalty.services.revocations import close_code_of_revoked_attempt, close_revoked_codes
from loyalty.services.stripe_codes import obtain_promotion_code
from loyalty.task_names import SEND_LOYALTY_EMAIL

logger = structlog.get_logger(__name__)

RESUME_AFTER = timedelta(minutes=10)  # far above one attempt (3 tries x STRIPE_TIMEOUT_SECONDS + backoff)


class GrantOutcome(StrEnum):
    APPLIED = "applied"
    SKIPPED = "skipped"
    FAILED = "failed"  # Stripe refused or was unreachable: the row stays pending, the error recorded
    BUSY = "busy"  # another worker holds the attempt
    LOST = "lost"  # another actor moved the row while we were at Stripe
    NOT_PENDING = "not_pending"


@dataclass
class ApplyReport:
    scanned: int = 0
    already_granted: int = 0  # pre-flight: a live row existed before this tick
    already_processed: int = 0  # our INSERT lost to another tick's (IntegrityError)
    no_longer_active: int = 0  # cancelled or downgraded between the batch query and the insert
    created: int = 0
    resumed: int = 0
    applied: int = 0
    skipped: int = 0
    failed: int = 0
    lost: int = 0
    codes_closed: int = 0
    emails_requeued: int = 0

    def count(self, outcome: GrantOutcome) -> None:
        if outcome in (GrantOutcome.APPLIED, GrantOutcome.SKIPPED, GrantOutcome.FAILED, GrantOutcome.LOST):
            setattr(self, outcome.value, getattr(self, outcome.value) + 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def apply_loyalty(*, actor: Actor) -> ApplyReport:
    """One tick: finish stale pending rows, grant every anniversary that is due, then sweep the
    side effects an on_commit may have lost (codes of revoked rows, unsent emails)."""
    report = ApplyReport()
    for discount_id in selectors.stale_pending_discounts(
        now=timezone.now(), idle_for=RESUME_AFTER, limit=settings.LOYALTY_BATCH_SIZE
    ).values_list("pk", flat=True):
        report.resumed += 1
        report.count(finish_discount(discount_id=discount_id, actor=actor))
    for subscription, anniversary in _due_anniversaries(report):
        discount = _insert_pending(subscription, anniversary, report)
        if discount is None:
            continue
        report.created += 1
        report.count(finish_discount(discount_id=discount.pk, actor=actor))
    report.codes_closed = close_revoked_codes(limit=settings.LOYALTY_BATCH_SIZE)
    report.emails_requeued = resend_missing_emails(limit=settings.LOYALTY_BATCH_SIZE)
    logger.info("loyalty_applied", **report.as_dict())
    return report


def finish_discount(*, discount_id: int, actor: Actor) -> GrantOutcome:
    """Take one pending row to applied (or skipped). Any number of workers may call it at once."""
    discount = LoyaltyDiscount.objects.select_related("subscription").get(pk=discount_id)
    if discount.status != DiscountStatus.PENDING:
        return GrantOutcome.NOT_PENDING
    if not _take_attempt(discount):
        return GrantOutcome.BUSY
    if not discount.subscription.is_active_pro and discount.attempts == 1:
        # Only before any Stripe call: once an attempt may have created the code, the row is
        # finished with the same key (a cancellation revokes it through the webhook instead).
        return _skip(discount, actor)
    try:
        promotion_code = obtain_promotion_code(discount)
    except StripeError as exc:
        _record_failure(discount, exc)
        return GrantOutcome.FAILED
    return _mark_applied(discount, promotion_code, actor)


def _due_anniversaries(report: ApplyReport) -> Iterator[tuple[Subscription, int]]:
    """Yields (subscription, anniversary) per keyset batch; never loads all subscribers at once."""
    now, after = timezone.now(), 0
    while True:
        batch = list(
            selectors.pro_subscriptions_past_a_year(now=now, after_pk=after, limit=settings.LOYALTY_BATCH_SIZE)
        )
        if not batch:
            return
        after = batch[-1].pk
        taken = selectors.taken_anniversaries(
            user_ids={s.user_id for s in batch}, subscription_ids={s.pk for s in batch}
        )
        for subscription in batch:
            report.scanned += 1
            assert subscription.pro_started_at is not None  # the selector filters pro_started_at <= ...
            anniversary = completed_anniversaries(subscription.pro_started_at, now)
            if anniversary == 0:
                continue
            if ("user", subscription.user_id, anniversary) in taken or (
                "subscription",
                subscription.pk,
                anniversary,
            ) in taken:
                report.already_granted += 1
                continue
            yield subscription, anniversary


def _insert_pending(subscription: Subscription, anniversary: int, report: ApplyReport) -> LoyaltyDiscount | None:
    try:
        with atomic():
            # The one row lock of this app. A cancellation's webhook UPDATEs the subscription row and
            # then revokes its live discounts, in one transaction: either it committed first (we see
            # the row ended and insert nothing), or its UPDATE waits for our insert to commit and
            # then revokes the row we made. Without it, a pending row inserted between the two
            # could escape the revocation and be granted to a cancelled subscription.
            still_active = Subscription.objects.select_for_update(no_key=True).filter(
                pk=subscription.pk, status=SubscriptionStatus.ACTIVE, plan=PRO_PLAN
            )
            if not list(still_active.values_list("pk", flat=True)):
                report.no_longer_active += 1
                return None
            return LoyaltyDiscount.objects.create(
                user_id=subscription.user_id,
                subscription=subscription,
                anniversary=anniversary,
                code=loyalty_code(user_id=subscription.user_id, anniversary=anniversary),
            )
    except IntegrityError:
        # The partial UNIQUE: another tick inserted this anniversary first. Its row, its job.
        report.already_processed += 1
        return None


def _take_attempt(discount: LoyaltyDiscount) -> bool:
    now = timezone.now()
    won = LoyaltyDiscount.objects.filter(
        pk=discount.pk, status=DiscountStatus.PENDING, attempts=discount.attempts
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, first_attempt_at=Coalesce("first_attempt_at", Value(now)))
    if won:
        discount.attempts += 1
        discount.last_attempt_at = now
        discount.first_attempt_at = discount.first_attempt_at or now
    return bool(won)


def _skip(discount: LoyaltyDiscount, actor: Actor) -> GrantOutcome:
    """The subscription stopped being active Pro before its code was made: no code for this year."""
    try:
        with atomic():
            apply_transition(
                instance=discount, transition="skip", actor=actor, reason="subscription no longer active Pro"
            )
    except Conflict:
        return GrantOutcome.LOST
    return GrantOutcome.SKIPPED


def _mark_applied(discount: LoyaltyDiscount, promotion_code: StripePromotionCode, actor: Actor) -> GrantOutcome:
    try:
        with atomic():
            apply_transition(
                instance=discount,
                transition="apply",
                actor=actor,
                reason=f"anniversary {discount.anniversary}",
                changes={
                    "stripe_promotion_code_id": promotion_code.id,
                    "applied_at": timezone.now(),
                    "last_error": "",
                },
                on_commit=functools.partial(enqueue, SEND_LOYALTY_EMAIL, discount.pk),
            )
    except Conflict:
        # Revoked (the subscription was cancelled) while we were at Stripe: the code we hold must
        # not stay usable. Applied by another worker: same key, same code, nothing to do.
        discount.refresh_from_db()
        if discount.status == DiscountStatus.REVOKED:
            close_code_of_revoked_attempt(discount_id=discount.pk, promotion_code_id=promotion_code.id)
        return GrantOutcome.LOST
    return GrantOutcome.APPLIED


def _record_failure(discount: LoyaltyDiscount, exc: StripeError) -> None:
    """The row stays pending with the error; the next tick (after RESUME_AFTER) retries with the same key."""
    LoyaltyDiscount.objects.filter(pk=discount.pk).update(last_error=exc.describe()[:2000])
    if isinstance(exc, StripeUnavailable):
        logger.warning("loyalty_stripe_unavailable", discount_id=discount.pk, error=exc.describe())
        return
    emit_beacon(
        "loyalty_stripe_rejected",
        discount_id=discount.pk,
        status=exc.status,
        code=exc.code,
        detail=exc.message,
    )
