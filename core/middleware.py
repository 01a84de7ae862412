import uuid
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from core.context import correlation_id


class CorrelationIdMiddleware:
    """Tags the request with X-Request-ID (or a fresh id) for audit rows, beacons and logs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or f"req-{uuid.uuid4().hex}"
        token = correlation_id.set(request_id)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            correlation_id.reset(token)
        response["X-Request-ID"] = request_id
        return response
