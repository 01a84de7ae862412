"""Celery tasks: thin wrappers that take ids and call one service. All idempotent (acks_late)."""

from celery import shared_task

from affiliates import services
from affiliates.task_names import EVALUATE_TIER
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
