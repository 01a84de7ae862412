"""Celery tasks: thin wrappers that take ids and call one service. All idempotent (acks_late)."""

from celery import shared_task

from affiliates import services
from affiliates.task_names import EVALUATE_TIER, MATCH_ADJUSTMENT_INVOICE
from core.actors import SystemActor


@shared_task(name=EVALUATE_TIER, acks_late=True)
def evaluate_tier_task(affiliate_id: int, cause: str = "") -> str:
    """Enqueued on commit after every commission change; safe to run any number of times."""
    result = services.evaluate_tier(affiliate_id=affiliate_id, actor=SystemActor("task:evaluate_tier"), cause=cause)
    return result.outcome


@shared_task(name="affiliates.tasks.reevaluate_changed_affiliates", acks_late=True)
def reevaluate_changed_affiliates_task() -> int:
    """Hourly sweeper for evaluations lost with a process that died after commit."""
    results = services.reevaluate_changed_affiliates(actor=SystemActor("task:reevaluate_changed_affiliates"))
    return sum(result.outcome == services.EvaluationOutcome.CHANGED for result in results)


@shared_task(name="affiliates.tasks.approve_held_commissions", acks_late=True)
def approve_held_commissions_task() -> int:
    return services.approve_held_commissions(actor=SystemActor("task:approve_held_commissions"))


@shared_task(name=MATCH_ADJUSTMENT_INVOICE, acks_late=True)
def match_adjustment_invoice_task(adjustment_id: int) -> str | None:
    """Enqueued on commit for a refund or dispute whose payload names no invoice; idempotent."""
    return services.match_adjustment_invoice(
        adjustment_id=adjustment_id, actor=SystemActor("task:match_adjustment_invoice")
    )


@shared_task(name="affiliates.tasks.match_unmatched_adjustments", acks_late=True)
def match_unmatched_adjustments_task() -> int:
    """Sweeper for matches lost with a process that died after commit, or with a Stripe outage."""
    return services.match_unmatched_adjustments(actor=SystemActor("task:match_unmatched_adjustments"))
