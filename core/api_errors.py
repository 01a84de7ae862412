"""One error envelope for the API: the DRF exception handler and the JSON 404/500 handlers all
answer `{"error": "<code>", "detail": ...}`."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from core.errors import DomainError, ErrorCode
from core.transactions import run_exit_hooks


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    run_exit_hooks()
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
        return ErrorCode.NOT_AUTHENTICATED
    if isinstance(exc, exceptions.PermissionDenied):
        return ErrorCode.PERMISSION_DENIED
    if isinstance(exc, exceptions.APIException):
        return str(exc.default_code)
    return f"http_{status_code}"


def api_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unhandled error under /api/ still answers JSON (a client parses every error the
    same way); the traceback goes to the log and the admins as usual, never into the body."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": ErrorCode.SERVER_ERROR, "detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


def api_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path under /api/ that matches no route (e.g. /api/payouts/abc/) answers JSON
    like every other API error; any other path gets Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": ErrorCode.NOT_FOUND, "detail": f"No API endpoint at {request.path}."}, status=404)
    return defaults.page_not_found(request, exception)
