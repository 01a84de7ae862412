"""Celery tasks: thin wrappers that call one function each."""

from celery import shared_task

from ledger.checks import verify_books


@shared_task(name="ledger.tasks.check_ledger", acks_late=True)
def check_ledger_task() -> int:
    """Hourly: the books' invariants; a finding raises the critical beacon (ledger.checks). Read-only,
    so two overlapping runs are harmless (the alert is claimed once per hour)."""
    return len(verify_books().findings)
