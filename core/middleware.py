import uuid
from collections.abc import Callable

import structlog
from django.http import HttpRequest, HttpResponse

from core.context import acting_request, correlation_id


class CorrelationIdMiddleware:
    """Tags the request with X-Request-ID (or a fresh id) for audit rows, beacons and logs, and
    makes the request the acting one for the field-change trail."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request.headers.get("X-Request-ID", "")[:64] or f"req-{uuid.uuid4().hex}"
        token = correlation_id.set(request_id)
        acting = acting_request.set(request)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
            acting_request.reset(acting)
            correlation_id.reset(token)
        response["X-Request-ID"] = request_id
        return response
