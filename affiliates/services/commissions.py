"""Commissions: recorded once per paid invoice, approved after the hold (posted to the books as
earned), reduced or reversed by refunds, lost disputes and voids (posted as reversals once earned).

The amount a commission has lost to Stripe is decided by one function, _settle, from every
refund and dispute recorded for its invoice (affiliates.models.StripeAdjustment), whichever
arrived first: webhooks are unordered, so a refund recorded before invoice.paid is applied when
the commission is recorded, in that transaction.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from affiliates import selectors
from affiliates.errors import AffiliateErrorCode
from affiliates.models import (
    AdjustmentKind,
    AdjustmentStatus,
    Affiliate,
    Commission,
    CommissionStatus,
    StripeAdjustment,
)
from affiliates.services import postings
from affiliates.services.tiers import enqueue_tier_evaluation
from affiliates.stripe_amounts import commission_minor, share_minor
from audit.transitions import apply_transition
from core import currencies
from core.actors import Actor, actor_label
from core.errors import BusinessRuleViolation, Conflict, NotFound
from core.transactions import atomic

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PaidInvoice:
    event_id: str
    invoice_id: str
    customer_id: str
    amount_paid: int  # Stripe's smallest currency unit (affiliates.stripe_amounts)
    currency: str
    # The invoice's payment intents when the payload carries them (invoice.payments, expanded):
    # refunds recorded by payment intent alone are matched to this invoice on arrival.
    payment_intent_ids: tuple[str, ...] = ()


def commission_amount(*, amount_paid: int, currency: str, rate: int) -> Decimal:
    """`rate` percent of a Stripe amount, in major units with the currency's own decimals
    (1.000 KWD at 20% -> Decimal('0.200'); 1000 JPY -> Decimal('200'))."""
    minor = commission_minor(amount_paid=amount_paid, currency=currency, rate=rate)
    return currencies.from_minor(minor, currency)


def record_commission(*, invoice: PaidInvoice, actor: Actor) -> Commission | None:
    """The commission for a referred customer's paid invoice, at the affiliate's current rate.

    Safety: the event-id claim of the Stripe pipeline (a replayed event never gets here), then the
    UNIQUE stripe_invoice_id (a second event for the same invoice loses on the index and is
    "already recorded", not an error), then the commission_version bump that makes any tier
    evaluation computed from the older sum lose its conditional UPDATE. On commit: evaluate_tier.
    Refunds and disputes already recorded for the invoice are applied in the same transaction.
    Returns None when there is nothing to record (no referral, nothing paid, already recorded).
    """
    affiliate_id = selectors.referring_affiliate_id(stripe_customer_id=invoice.customer_id)
    if affiliate_id is None or invoice.amount_paid <= 0:
        logger.info("commission_not_due", invoice=invoice.invoice_id, referred=affiliate_id is not None)
        return None
    currency = currencies.normalize(invoice.currency)
    try:
        with atomic():
            rate = _lock_commissions_of(affiliate_id)
            commission = Commission.objects.create(
                affiliate_id=affiliate_id,
                stripe_invoice_id=invoice.invoice_id,
                stripe_event_id=invoice.event_id,
                amount=commission_amount(amount_paid=invoice.amount_paid, currency=currency, rate=rate),
                currency=currency,
                rate=rate,
                invoice_amount_paid=invoice.amount_paid,
            )
            _match_payment_intents(invoice_id=invoice.invoice_id, payment_intent_ids=invoice.payment_intent_ids)
            # A refund or dispute that arrived before this invoice: applied now, in this transaction.
            commission = _settle(commission_id=commission.pk, actor=actor, cause="invoice", locked=True)
    except IntegrityError:
        if not Commission.objects.filter(stripe_invoice_id=invoice.invoice_id).exists():
            raise
        logger.info("commission_already_recorded", invoice=invoice.invoice_id, event_id=invoice.event_id)
        return None
    logger.info(
        "commission_recorded", commission=commission.pk, amount=str(commission.amount_display), by=actor_label(actor)
    )
    enqueue_tier_evaluation(affiliate_id=affiliate_id, cause=f"invoice.paid {invoice.event_id}")
    return commission


def _lock_commissions_of(affiliate_id: int) -> int:
    """Bump the affiliate's commission_version (row lock until commit) and read its rate under it.

    One writer of an affiliate's commissions at a time, in one place: record and reverse both lock
    the affiliate row first, then touch the commission, so they never deadlock.
    """
    Affiliate.objects.filter(pk=affiliate_id).update(commission_version=F("commission_version") + 1)
    return Affiliate.objects.values_list("commission_rate", flat=True).get(pk=affiliate_id)


def reverse_commission(
    *, commission_id: int, actor: Actor, reason: str = "", expected_status: str | None = None, cause: str = "manual"
) -> Commission:
    """Reverse a commission in full (a void or an admin's decision), then re-evaluate the tier on commit.

    If it was approved (earned in the books), what is still earned is posted back as
    `commission:{id}:reverse:{cause}:{total}` (COMMISSION_REVERSED; may take the payable below zero
    after a payout: a clawback). Safety: state machine (pending|approved -> reversed, final), race
    guard (from the status the actor saw: Conflict if it moved), the affiliate row lock and
    commission_version bump (an evaluation from the old sum cannot win), the ledger's UNIQUE id.
    """
    return _settle(
        commission_id=commission_id, actor=actor, cause=cause, reason=reason, full=True, expected_status=expected_status
    )


def reverse_invoice_commission(
    *, stripe_invoice_id: str, actor: Actor, reason: str, cause: str = "void"
) -> Commission | None:
    """The webhook side of a full reversal: reverse that invoice's commission if there is a live one.

    None when there is none (not a referred customer) or it is already reversed (another delivery
    or event did it). A Conflict means the hold-period job approved it meanwhile (approved ->
    reversed is still legal) or a concurrent event reversed it: look again once.
    """
    for _attempt in range(2):
        seen = Commission.objects.filter(stripe_invoice_id=stripe_invoice_id).values("pk", "status").first()
        if seen is None or seen["status"] == CommissionStatus.REVERSED:
            return None
        try:
            return reverse_commission(
                commission_id=seen["pk"], actor=actor, reason=reason, expected_status=seen["status"], cause=cause
            )
        except Conflict:
            continue
    return None


def settle_invoice_commission(
    *, stripe_invoice_id: str, actor: Actor, cause: str, reason: str = ""
) -> Commission | None:
    """Apply the refunds and disputes recorded for an invoice to its commission, if it exists yet
    (if not, record_commission applies them when invoice.paid arrives)."""
    commission_id = Commission.objects.filter(stripe_invoice_id=stripe_invoice_id).values_list("pk", flat=True).first()
    if commission_id is None:
        return None
    return _settle(commission_id=commission_id, actor=actor, cause=cause, reason=reason)


def _settle(
    *,
    commission_id: int,
    actor: Actor,
    cause: str,
    reason: str = "",
    full: bool = False,
    expected_status: str | None = None,
    locked: bool = False,
) -> Commission:
    """Bring one commission in line with what Stripe reported (or reverse it in full).

    The amount taken back only grows (reversed_minor, cumulative): a partial refund takes
    commission * refunded / paid (half-up), several partial refunds never more than the
    commission, a lost dispute all of it; reaching the whole amount reverses the commission. A
    pending commission is only reduced (nothing was earned yet: its approval posts the rest); an
    approved one posts the difference. An open dispute marks it disputed (not approvable).
    Safety: the affiliate row lock, then the commission row lock (same order as record_commission),
    so two events for one invoice apply one after the other; the ledger's UNIQUE transfer id (the
    cumulative total is in it) makes a replay a no-op.
    """
    with atomic():
        commission = _locked_commission(commission_id, lock_affiliate=not locked)
        if not locked:
            # The commission_version was bumped: an evaluation running now loses its race, so this
            # transaction owes the affiliate one after commit (even if nothing else changes).
            enqueue_tier_evaluation(affiliate_id=commission.affiliate_id, cause=f"commission #{commission_id} {cause}")
        if commission.status == CommissionStatus.REVERSED and not full:  # full: the transition refuses it
            return commission
        reported, disputed = _stripe_view(commission)
        target = commission.amount_minor if full else max(commission.reversed_minor, reported)
        delta, earned = target - commission.reversed_minor, commission.status == CommissionStatus.APPROVED
        changes = {"reversed_minor": target, "disputed": disputed}
        if full or 0 < commission.amount_minor <= target:  # a zero commission (rate 0) stays as it is
            apply_transition(
                instance=commission,
                transition="reverse",
                actor=actor,
                expected=expected_status or commission.status,
                reason=reason or cause,
                changes=changes,
            )
        elif delta > 0 or disputed != commission.disputed:
            Commission.objects.filter(pk=commission_id).update(**changes)
            commission.reversed_minor, commission.disputed = target, disputed
        if earned and delta > 0:
            postings.post_reversed(commission=commission, amount_minor=delta, cause=f"{cause}:{target}")
    logger.info("commission_settled", commission=commission_id, reversed_minor=target, disputed=disputed, cause=cause)
    return commission


def _locked_commission(commission_id: int, *, lock_affiliate: bool) -> Commission:
    affiliate_id = Commission.objects.filter(pk=commission_id).values_list("affiliate_id", flat=True).first()
    if affiliate_id is None:
        raise NotFound(f"Commission #{commission_id} not found.", code=AffiliateErrorCode.COMMISSION_NOT_FOUND)
    if lock_affiliate:
        _lock_commissions_of(affiliate_id)
    return Commission.objects.select_for_update().get(pk=commission_id)


def _stripe_view(commission: Commission) -> tuple[int, bool]:
    """(minor units Stripe's refunds and disputes take back, an open dispute?) for the invoice."""
    rows = StripeAdjustment.objects.filter(stripe_invoice_id=commission.stripe_invoice_id)
    refunded = paid = 0
    lost = disputed = False
    for kind, status, amount, charge_amount in rows.values_list("kind", "status", "amount", "charge_amount"):
        if kind == AdjustmentKind.REFUND:
            refunded, paid = refunded + amount, paid + charge_amount
        else:
            lost, disputed = lost or status == AdjustmentStatus.LOST, disputed or status == AdjustmentStatus.OPEN
    if lost:
        return commission.amount_minor, False
    whole = commission.invoice_amount_paid or paid
    return share_minor(total_minor=commission.amount_minor, part=refunded, whole=whole), disputed


def _match_payment_intents(*, invoice_id: str, payment_intent_ids: tuple[str, ...]) -> None:
    if payment_intent_ids:
        StripeAdjustment.objects.filter(stripe_payment_intent_id__in=payment_intent_ids, stripe_invoice_id="").update(
            stripe_invoice_id=invoice_id
        )


def approve_commission(
    *, commission_id: int, actor: Actor, expected_status: str = CommissionStatus.PENDING
) -> Commission:
    """Make a commission payable: approve it and post what it still earns to the affiliate's payable.

    Safety: the commission row lock (a refund or dispute being applied to it waits or is waited
    for), state machine (pending -> approved only), race guard, refused while disputed, and the
    posting `commission:{id}:earn` in the same transaction (a replay returns the original)."""
    with atomic():
        commission = Commission.objects.select_for_update().filter(pk=commission_id).first()
        if commission is None:
            raise NotFound(f"Commission #{commission_id} not found.", code=AffiliateErrorCode.COMMISSION_NOT_FOUND)
        if commission.disputed:
            raise BusinessRuleViolation(
                f"Commission #{commission_id} is disputed: it can be approved once the dispute is won.",
                code=AffiliateErrorCode.COMMISSION_DISPUTED,
            )
        _approve(commission, actor=actor, expected=expected_status)
    return commission


def approve_held_commissions(*, actor: Actor, now: datetime | None = None, batch_size: int = 200) -> int:
    """Approve every pending, undisputed commission older than COMMISSION_HOLD_DAYS, posting each
    one's earned amount to the books; only approved ones are payable.

    Safety: `select_for_update(skip_locked=True)` batches, so two concurrent ticks take disjoint
    rows and a commission being refunded right now is skipped (the next tick sees the result);
    each approval is a guarded transition with its audit row and its `commission:{id}:earn`
    posting in the same transaction.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    reason = f"held {settings.COMMISSION_HOLD_DAYS} days"
    approved = 0
    while True:
        with atomic():
            batch = list(
                Commission.objects.select_for_update(skip_locked=True)
                .filter(status=CommissionStatus.PENDING, disputed=False, created_at__lte=cutoff)
                .order_by("pk")[:batch_size]
            )
            for commission in batch:
                _approve(commission, actor=actor, reason=reason)
        approved += len(batch)
        if len(batch) < batch_size:
            return approved


def _approve(commission: Commission, *, actor: Actor, expected: str | None = None, reason: str = "") -> None:
    apply_transition(instance=commission, transition="approve", actor=actor, expected=expected, reason=reason)
    if commission.net_minor > 0:  # refunds before the approval reduced it: only the rest was earned
        postings.post_earned(commission=commission, amount_minor=commission.net_minor)
