from celery import shared_task

from pos_sync import services


@shared_task(acks_late=True)
def push_pending_orders() -> dict[str, int]:
    """Beat, every minute: push due sync jobs, batch after batch, for at most one tick's time.
    Two overlapping ticks are harmless: they lock disjoint batches and claim before pushing."""
    return services.drain_due_jobs().summary()
