"""Celery tasks: thin wrappers taking ids. Every one is idempotent (acks_late redelivers)."""

from celery import shared_task

from core.actors import SystemActor
from loyalty import services
from loyalty.task_names import CLOSE_REVOKED_CODE, SEND_LOYALTY_EMAIL


@shared_task(name="loyalty.tasks.apply_loyalty", acks_late=True)
def apply_loyalty_task() -> dict[str, int]:
    """Beat, every 30 minutes (CELERY_BEAT_SCHEDULE "apply-loyalty"). Two overlapping ticks are safe."""
    return services.apply_loyalty(actor=SystemActor("task:apply_loyalty")).as_dict()


@shared_task(name=SEND_LOYALTY_EMAIL, acks_late=True)
def send_loyalty_email_task(discount_id: int) -> bool:
    return services.send_loyalty_email(discount_id=discount_id)


@shared_task(name=CLOSE_REVOKED_CODE, acks_late=True)
def close_revoked_code_task(discount_id: int) -> bool:
    return services.close_revoked_code(discount_id=discount_id)
