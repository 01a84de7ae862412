"""Refunds and disputes from Stripe: recorded first (whether or not the invoice's commission
exists yet), then applied to the commission (commissions._settle) when both sides are known.

Stripe delivers at least once and in any order, and from API version 2025-03-31 a Charge no
longer names its invoice. So:
- one StripeAdjustment row per Stripe object (UNIQUE kind + object id); a charge's
  amount_refunded is cumulative and only grows (a late, older event cannot lower it), a
  dispute's status goes open -> won | lost and never back;
- the invoice comes from the payload when it has one (charge.invoice, old API versions), else
  from the InvoicePayment of the charge's payment intent, read at Stripe by a task after commit
  (match_adjustment_invoice), never inside the webhook's transaction;
- the commission is settled in the transaction that records the row (if the invoice is known
  and its commission exists), in the one that matches it, or in the one that records the
  commission (record_commission), whichever comes last.
"""

from dataclasses import dataclass

import structlog
from django.db import IntegrityError, transaction
from django.utils import timezone

from affiliates.clients import stripe as stripe_client
from affiliates.models import AdjustmentKind, AdjustmentStatus, StripeAdjustment
from affiliates.services.commissions import settle_invoice_commission
from affiliates.task_names import MATCH_ADJUSTMENT_INVOICE
from core import currencies
from core.actors import Actor
from core.enqueue import enqueue_on_commit
from core.transactions import atomic

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class StripeAdjustmentFacts:
    """What a charge.refunded or charge.dispute.* event says, in Stripe's smallest unit."""

    kind: str  # AdjustmentKind
    object_id: str  # the charge (refunds) or the dispute
    charge_id: str
    payment_intent_id: str
    invoice_id: str  # "" when the payload does not name it (API 2025-03-31 and later)
    amount: int  # refunded so far (cumulative), or disputed
    charge_amount: int
    currency: str
    status: str  # AdjustmentStatus


def record_stripe_adjustment(*, facts: StripeAdjustmentFacts, actor: Actor, reason: str = "") -> StripeAdjustment:
    """Record a refund or dispute and apply it to its invoice's commission if that exists yet.

    Safety: UNIQUE (kind, object id) with the insert in a savepoint (a concurrent or replayed
    delivery updates the one row), monotonic guarded updates (amount only up, dispute status only
    from open), then commissions._settle under the affiliate and commission row locks. An
    unmatched row (no invoice in the payload) is matched by a task after commit; the sweeper
    match_unmatched_adjustments re-tries whatever a lost enqueue or a Stripe outage left.
    """
    with atomic():
        row = _upsert(facts)
        if row.stripe_invoice_id:
            settle_invoice_commission(
                stripe_invoice_id=row.stripe_invoice_id, actor=actor, cause=_cause(row), reason=reason
            )
        elif row.stripe_payment_intent_id:
            enqueue_on_commit(MATCH_ADJUSTMENT_INVOICE, row.pk)
        else:
            logger.warning("stripe_adjustment_unmatchable", kind=row.kind, object_id=row.stripe_object_id)
    return row


def match_adjustment_invoice(*, adjustment_id: int, actor: Actor) -> str | None:
    """Find the invoice of an unmatched refund or dispute at Stripe (by its payment intent) and
    apply it. Idempotent: a matched row is only settled again (a no-op if nothing changed)."""
    row = StripeAdjustment.objects.filter(pk=adjustment_id).first()
    if row is None or not (row.stripe_invoice_id or row.stripe_payment_intent_id):
        return None
    invoice_id = row.stripe_invoice_id or stripe_client.invoice_for_payment_intent(row.stripe_payment_intent_id)
    if not invoice_id:
        logger.info("stripe_adjustment_without_invoice", adjustment=adjustment_id)
        return None
    with atomic():
        StripeAdjustment.objects.filter(pk=adjustment_id, stripe_invoice_id="").update(stripe_invoice_id=invoice_id)
        row.stripe_invoice_id = invoice_id
        settle_invoice_commission(stripe_invoice_id=invoice_id, actor=actor, cause=_cause(row))
    return invoice_id


def match_unmatched_adjustments(*, actor: Actor, limit: int = 200) -> int:
    """The sweeper behind the on-commit match (a lost enqueue, a Stripe outage): match every row
    that still has no invoice. Safe to run concurrently: matching is idempotent."""
    pending = StripeAdjustment.objects.filter(stripe_invoice_id="").exclude(stripe_payment_intent_id="")
    matched = 0
    for adjustment_id in pending.order_by("pk").values_list("pk", flat=True)[:limit]:
        matched += match_adjustment_invoice(adjustment_id=adjustment_id, actor=actor) is not None
    return matched


def _cause(row: StripeAdjustment) -> str:
    return f"{row.kind}-{row.stripe_object_id}"


def _upsert(facts: StripeAdjustmentFacts) -> StripeAdjustment:
    now = timezone.now()
    values = {
        "stripe_charge_id": facts.charge_id,
        "stripe_payment_intent_id": facts.payment_intent_id,
        "stripe_invoice_id": facts.invoice_id,
        "amount": facts.amount,
        "charge_amount": facts.charge_amount,
        "currency": currencies.normalize(facts.currency),
        "status": facts.status,
    }
    key = {"kind": facts.kind, "stripe_object_id": facts.object_id}
    try:
        with transaction.atomic():
            return StripeAdjustment.objects.create(**key, **values, created_at=now, updated_at=now)
    except IntegrityError:
        pass
    rows = StripeAdjustment.objects.filter(**key)
    if facts.kind == AdjustmentKind.REFUND:
        rows.filter(amount__lt=facts.amount).update(amount=facts.amount, updated_at=now)
    elif facts.status != AdjustmentStatus.OPEN:
        rows.filter(status=AdjustmentStatus.OPEN).update(status=facts.status, updated_at=now)
    if facts.invoice_id:
        rows.filter(stripe_invoice_id="").update(stripe_invoice_id=facts.invoice_id)
    if facts.payment_intent_id:
        rows.filter(stripe_payment_intent_id="").update(stripe_payment_intent_id=facts.payment_intent_id)
    return rows.get()
