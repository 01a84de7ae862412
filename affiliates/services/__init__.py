"""Every write of the affiliate domain. Split by subject: commissions, tiers, the duplicate backfill."""

from affiliates.services.commissions import (
    PaidInvoice,
    approve_commission,
    approve_held_commissions,
    commission_amount,
    record_commission,
    reverse_commission,
    reverse_invoice_commission,
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
    "TierEvaluation",
    "approve_commission",
    "approve_held_commissions",
    "commission_amount",
    "enqueue_tier_evaluation",
    "evaluate_tier",
    "find_duplicate_tier_events",
    "record_commission",
    "reevaluate_changed_affiliates",
    "request_tier_evaluation",
    "reverse_commission",
    "reverse_invoice_commission",
    "supersede_tier_events",
]
