from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.stripe_events import handle_stripe_event, verify_stripe_event


class StripeWebhookApi(APIView):
    """Stripe calls this; it authenticates by signature, not by session or token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        outcome = serializers.CharField()
        event_id = serializers.CharField()

        class Meta:
            ref_name = "StripeWebhookOutcome"

    @extend_schema(
        request=None,
        responses={200: OutputSerializer, 400: OpenApiResponse(description="Bad or missing signature")},
    )
    def post(self, request: Request) -> Response:
        event = verify_stripe_event(payload=request._request.body, signature=request.headers.get("Stripe-Signature"))
        outcome = handle_stripe_event(event=event)
        return Response({"outcome": outcome, "event_id": event.id})


def api_server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an unhandled error under /api/ still answers JSON (a client parses every error the
    same way); the traceback goes to the log and the admins as usual, never into the body."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "server_error", "detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


def api_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler404: a path under /api/ that matches no route (e.g. /api/payouts/abc/) answers JSON
    like every other API error; any other path gets Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"error": "not_found", "detail": f"No API endpoint at {request.path}."}, status=404)
    return defaults.page_not_found(request, exception)
