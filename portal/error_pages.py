"""The affiliate's error pages, whatever DEBUG says.

Django's handlers render templates/404.html, 403.html and 500.html only with DEBUG off; with it
on, they show the technical pages (the URL list, settings, a traceback) to whoever asked. The
portal's pages are seen by affiliates, so every portal URL goes through `friendly_errors`
(portal.urls wraps each one, and a catch-all route covers paths that match none): it renders the
same templates itself, with the status Django would have given, and logs as Django would.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseServerError
from django.shortcuts import render
from django.template import loader
from django.template.response import SimpleTemplateResponse
from django.utils.log import log_response

from affiliates.errors import AffiliateErrorCode
from core.context import current_correlation_id
from core.errors import NotFound
from core.errors import PermissionDenied as DomainPermissionDenied

View = Callable[..., HttpResponseBase]


def friendly_errors(view: View) -> View:
    """Turns the view's 404, 403 and unexpected errors into the friendly pages (status 404, 403,
    500). A template response is rendered here, so an error while rendering it is caught too."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
            if isinstance(response, SimpleTemplateResponse):
                response.render()
            return response
        except (Http404, NotFound) as exc:
            return _logged(request, not_found_page(request, exc))
        except (DjangoPermissionDenied, DomainPermissionDenied):
            return _logged(request, forbidden_page(request))
        except Exception as exc:
            if settings.DEBUG_PROPAGATE_EXCEPTIONS:
                raise
            # What Django's own handler does for an uncaught error (error reporting hooks, the
            # test client re-raising it, the "Internal Server Error" log line with the traceback).
            signals.got_request_exception.send(sender=None, request=request)
            return _logged(request, server_error_page(), exc)

    return wrapped


def not_found_page(request: HttpRequest, exc: Exception) -> HttpResponse:
    if getattr(exc, "code", None) == AffiliateErrorCode.NOT_AN_AFFILIATE:
        context = {
            "title": "No affiliate account",
            "explanation": "You are signed in with an account that has no affiliate dashboard.",
            "not_an_affiliate": True,
        }
        return render(request, "404.html", context, status=404)
    return render(request, "404.html", status=404)


def forbidden_page(request: HttpRequest) -> HttpResponse:
    return render(request, "403.html", status=403)


def server_error_page() -> HttpResponse:
    """Rendered without the request's context (no session or database read): the error may be
    theirs. The request id lets support find the traceback in the log."""
    body = loader.get_template("500.html").render({"request_id": current_correlation_id()})
    return HttpResponseServerError(body)


def page_not_found(request: HttpRequest, unknown: str = "") -> HttpResponse:
    """The catch-all under /affiliate/: a path no portal page matches is the friendly 404 too."""
    raise Http404


def _logged(request: HttpRequest, response: HttpResponse, exception: Exception | None = None) -> HttpResponse:
    log_response(
        "%s: %s", response.reason_phrase, request.path, response=response, request=request, exception=exception
    )
    return response
