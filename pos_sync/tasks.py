"""Celery tasks: thin wrappers that call one service each."""

from celery import shared_task

from pos_sync import services


@shared_task(name="pos_sync.tasks.push_pending_orders", acks_late=True)
def push_pending_orders_task() -> dict[str, int]:
    """Beat, every minute: push due sync jobs, batch after batch, for at most one tick's time.
    Two overlapping ticks are harmless: they lock disjoint batches and claim before pushing."""
    return services.drain_due_jobs().summary()
