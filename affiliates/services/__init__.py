"""Every write of the affiliate domain. Split by subject: commissions (and their postings in the
books), Stripe refunds and disputes, tiers, the duplicate backfill."""

from affiliates.services.adjustments import (
    StripeAdjustmentFacts,
    match_adjustment_invoice,
    match_unmatched_adjustments,
    record_stripe_adjustment,
)
from affiliates.services.commissions import (
    PaidInvoice,
    approve_commission,
    approve_held_commissions,
    commission_amount,
    record_commission,
    reverse_commission,
    reverse_invoice_commission,
    settle_invoice_commission,
)
from affiliates.services.dedupe import DuplicateRun, find_duplicate_tier_events, supersede_tier_events
from affiliates.services.tiers import (
    EvaluationOutcome,
    TierEvaluation,
    enqueue_tier_evaluation,
    evaluate_tier,
    reevaluate_changed_affiliates,
    request_tier_evaluation,
)

__all__ = [
    "DuplicateRun",
    "EvaluationOutcome",
    "PaidInvoice",
    "StripeAdjustmentFacts",
    "TierEvaluation",
    "approve_commission",
    "approve_held_commissions",
    "commission_amount",
    "enqueue_tier_evaluation",
    "evaluate_tier",
    "find_duplicate_tier_events",
    "match_adjustment_invoice",
    "match_unmatched_adjustments",
    "record_commission",
    "record_stripe_adjustment",
    "reevaluate_changed_affiliates",
    "request_tier_evaluation",
    "reverse_commission",
    "reverse_invoice_commission",
    "settle_invoice_commission",
    "supersede_tier_events",
]
