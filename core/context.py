"""The request or task id that audit rows and beacons carry, so a row leads back to its cause."""

from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="")


def current_correlation_id() -> str:
    return correlation_id.get()
