"""The admin's side of the error hierarchy: a service error becomes a message, never a 500."""

from django.contrib import messages
from django.http import HttpRequest

from core.errors import Conflict, DomainError
from core.transactions import run_exit_hooks


def report_error(request: HttpRequest, exc: DomainError, *, prefix: str = "") -> None:
    run_exit_hooks()
    level = messages.WARNING if isinstance(exc, Conflict) else messages.ERROR
    messages.add_message(request, level, f"{prefix}{exc.message}")
