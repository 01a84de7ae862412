"""Commissions: recorded once per paid invoice, reversed on refund or void, approved after the hold."""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import structlog
from django.conf import settings
from django.db import IntegrityError
from django.db.models import F
from django.utils import timezone

from affiliates import selectors
from affiliates.errors import AffiliateErrorCode
from affiliates.models import Affiliate, Commission, CommissionStatus
from affiliates.services.tiers import enqueue_tier_evaluation
from audit.transitions import apply_transition
from core.actors import Actor, actor_label
from core.errors import Conflict, NotFound
from core.transactions import atomic

logger = structlog.get_logger(__name__)
CENT = Decimal("0.01")
# Stripe amounts are in the currency's smallest unit; these currencies have none below the unit.
ZERO_DECIMAL_CURRENCIES = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)


@dataclass(frozen=True)
class PaidInvoice:
    event_id: str
    invoice_id: str
    customer_id: str
    amount_paid: int  # Stripe's smallest currency unit
    currency: str


def commission_amount(*, amount_paid: int, currency: str, rate: int) -> Decimal:
    exponent = 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2
    return (Decimal(amount_paid).scaleb(-exponent) * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def record_commission(*, invoice: PaidInvoice, actor: Actor) -> Commission | None:
    """The commission for a referred customer's paid invoice, at the affiliate's current rate.

    Safety: the event-id claim of the Stripe pipeline (a replayed event never gets here), then the
    UNIQUE stripe_invoice_id (a second event for the same invoice loses on the index and is
    "already recorded", not an error), then the commission_version bump that makes any tier
    evaluation computed from the older sum lose its conditional UPDATE. On commit: evaluate_tier.
    Returns None when there is nothing to record (no referral, nothing paid, already recorded).
    """
    affiliate_id = selectors.referring_affiliate_id(stripe_customer_id=invoice.customer_id)
    if affiliate_id is None or invoice.amount_paid <= 0:
        logger.info("commission_not_due", invoice=invoice.invoice_id, referred=affiliate_id is not None)
        return None
    try:
        with atomic():
            rate = _lock_commissions_of(affiliate_id)
            commission = Commission.objects.create(
                affiliate_id=affiliate_id,
                stripe_invoice_id=invoice.invoice_id,
                stripe_event_id=invoice.event_id,
                amount=commission_amount(amount_paid=invoice.amount_paid, currency=invoice.currency, rate=rate),
                currency=invoice.currency.upper(),
                rate=rate,
            )
    except IntegrityError:
        if not Commission.objects.filter(stripe_invoice_id=invoice.invoice_id).exists():
            raise
        logger.info("commission_already_recorded", invoice=invoice.invoice_id, event_id=invoice.event_id)
        return None
    logger.info("commission_recorded", commission=commission.pk, amount=str(commission.amount), by=actor_label(actor))
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
    *, commission_id: int, actor: Actor, reason: str = "", expected_status: str | None = None
) -> Commission:
    """Reverse a commission (refund, void or an admin's decision), then re-evaluate the tier on commit.

    Safety: state machine (pending|approved -> reversed, reversed is final), race guard (guarded
    UPDATE from the status the actor saw: Conflict if it moved), and the commission_version bump in
    the same transaction so an evaluation from the old sum cannot win.
    """
    with atomic():
        affiliate_id = Commission.objects.filter(pk=commission_id).values_list("affiliate_id", flat=True).first()
        if affiliate_id is None:
            raise NotFound(f"Commission #{commission_id} not found.", code=AffiliateErrorCode.COMMISSION_NOT_FOUND)
        _lock_commissions_of(affiliate_id)
        commission = Commission.objects.get(pk=commission_id)
        apply_transition(
            instance=commission,
            transition="reverse",
            actor=actor,
            expected=expected_status or commission.status,
            reason=reason,
            on_commit=functools.partial(
                enqueue_tier_evaluation, affiliate_id=affiliate_id, cause=f"commission #{commission_id} reversed"
            ),
        )
    return commission


def reverse_invoice_commission(*, stripe_invoice_id: str, actor: Actor, reason: str) -> Commission | None:
    """The webhook side of reversal: reverse that invoice's commission if there is a live one.

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
                commission_id=seen["pk"], actor=actor, reason=reason, expected_status=seen["status"]
            )
        except Conflict:
            continue
    return None


def approve_commission(
    *, commission_id: int, actor: Actor, expected_status: str = CommissionStatus.PENDING
) -> Commission:
    """Make a commission payable. Safety: state machine (pending -> approved only) and race guard."""
    with atomic():
        commission = Commission.objects.filter(pk=commission_id).first()
        if commission is None:
            raise NotFound(f"Commission #{commission_id} not found.", code=AffiliateErrorCode.COMMISSION_NOT_FOUND)
        apply_transition(instance=commission, transition="approve", actor=actor, expected=expected_status)
    return commission


def approve_held_commissions(*, actor: Actor, now: datetime | None = None, batch_size: int = 200) -> int:
    """Approve every pending commission older than COMMISSION_HOLD_DAYS; only approved ones are payable.

    Safety: `select_for_update(skip_locked=True)` batches, so two concurrent ticks take disjoint
    rows and a commission being reversed right now is skipped (the next tick sees it reversed);
    each approval is a guarded transition with its audit row.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.COMMISSION_HOLD_DAYS)
    reason = f"held {settings.COMMISSION_HOLD_DAYS} days"
    approved = 0
    while True:
        with atomic():
            batch = list(
                Commission.objects.select_for_update(skip_locked=True)
                .filter(status=CommissionStatus.PENDING, created_at__lte=cutoff)
                .order_by("pk")[:batch_size]
            )
            for commission in batch:
                apply_transition(instance=commission, transition="approve", actor=actor, reason=reason)
        approved += len(batch)
        if len(batch) < batch_size:
            return approved
