"""Celery tasks: thin wrappers that call one service each."""

from celery import shared_task

from audit import services
from audit.chain import verify_audit_trail


@shared_task(name="audit.tasks.raise_beacon_alerts", acks_late=True)
def raise_beacon_alerts_task() -> int:
    return len(services.raise_beacon_alerts())


@shared_task(name="audit.tasks.verify_audit_trail", acks_late=True)
def verify_audit_trail_task() -> int:
    """Hourly: a broken chain raises the critical beacon audit_trail_broken (audit.chain).
    Read-only, so two overlapping runs are harmless (the alert is claimed once per hour)."""
    return len(verify_audit_trail(beacon=True).problems)
