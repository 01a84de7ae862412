"""The admin's side of the error hierarchy: a service error becomes a message, never a 500."""

from django.contrib import messages
from django.http import HttpRequest

from audit.beacons import flush_pending_beacons
from audit.errors import Conflict, DomainError


def report_error(request: HttpRequest, exc: DomainError, *, prefix: str = "") -> None:
    flush_pending_beacons()
    level = messages.WARNING if isinstance(exc, Conflict) else messages.ERROR
    messages.add_message(request, level, f"{prefix}{exc.message}")
