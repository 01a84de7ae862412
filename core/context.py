"""The request or task id that audit rows and beacons carry, so a row leads back to its cause."""

from contextvars import ContextVar
from typing import Any

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")


def current_correlation_id() -> str:
    return correlation_id.get()


# Who is acting, for the field-change trail (audit.field_trail): the HTTP request being served
# (its user is read when a tracked row is written, so DRF's token authentication, which runs in
# the view, is seen too), or the name of the system job (a Celery task) when there is no request.
acting_request: ContextVar[Any] = ContextVar("acting_request", default=None)
acting_system: ContextVar[str] = ContextVar("acting_system", default="")


def current_actor() -> tuple[int | None, str]:
    """(user id, label) of whoever is acting now; (None, "") when nothing says (a shell, raw SQL)."""
    request = acting_request.get()
    if request is not None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            return user.pk, user.get_username()
        return None, f"anonymous {request.method} {request.path}"[:150]
    system = acting_system.get()
    return None, f"system:{system}" if system else ""
