"""Celery tasks: take ids, call one service, own the retry policy."""

from celery import shared_task

from payouts import services
from payouts.clients.wise import WiseUnavailable
from payouts.task_names import DISPATCH_WISE_TRANSFER


@shared_task(
    name=DISPATCH_WISE_TRANSFER,
    acks_late=True,
    autoretry_for=(WiseUnavailable,),
    retry_backoff=2,
    retry_backoff_max=300,  # well below the broker's visibility_timeout (3600 s)
    retry_jitter=True,
    max_retries=8,
)
def dispatch_wise_transfer_task(payout_id: int) -> str:
    """Network errors and 5xx retry with backoff; every retry reuses the same customerTransactionId.
    After the last retry the beat sweeper takes the payout up again."""
    return str(services.dispatch_wise_transfer(payout_id=payout_id))


@shared_task(name="payouts.tasks.redispatch_stuck_payouts", acks_late=True)
def redispatch_stuck_payouts_task() -> int:
    return services.redispatch_stuck_payouts()


@shared_task(name="payouts.tasks.poll_processing_payouts", acks_late=True)
def poll_processing_payouts_task() -> dict[str, int]:
    return services.poll_processing_payouts()
