"""One DRF exception handler: every error body is JSON with an "error" code."""

from typing import Any

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from audit.beacons import flush_pending_beacons
from audit.errors import DomainError, ErrorCode


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    flush_pending_beacons()
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    response.data = {"error": _code_for(exc, response.status_code), "detail": response.data}
    return response


def _code_for(exc: Exception, status_code: int) -> str:
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError):
        return ErrorCode.VALIDATION_ERROR
    if isinstance(exc, Http404 | exceptions.NotFound):
        return ErrorCode.NOT_FOUND
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        return "not_authenticated"
    if isinstance(exc, exceptions.PermissionDenied):
        return ErrorCode.PERMISSION_DENIED
    if isinstance(exc, exceptions.APIException):
        return str(exc.default_code)
    return f"http_{status_code}"
