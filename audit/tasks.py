"""Celery tasks: thin wrappers that call one service each."""

from celery import shared_task

from audit import services


@shared_task(name="audit.tasks.raise_beacon_alerts", acks_late=True)
def raise_beacon_alerts_task() -> int:
    return len(services.raise_beacon_alerts())
