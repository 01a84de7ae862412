from celery import shared_task

from audit import services


@shared_task(acks_late=True)
def raise_beacon_alerts() -> int:
    return len(services.raise_beacon_alerts())
