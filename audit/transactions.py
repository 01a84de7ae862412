from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from audit.beacons import flush_pending_beacons


@contextmanager
def atomic() -> Iterator[None]:
    """transaction.atomic() for services: on the way out, commit or rollback, it writes the race
    beacon counters that the transaction queued, so a lost race is counted even though the
    Conflict it raised rolled the transaction back."""
    try:
        with transaction.atomic():
            yield
    finally:
        flush_pending_beacons()
