from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api_schema import error_response
from webhooks.stripe_events import handle_stripe_event, verify_stripe_event


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
        responses={
            200: OutputSerializer,
            400: error_response("Bad or missing signature, or not a Stripe event"),
            503: error_response("A handler could not read its object at Stripe: nothing was claimed, redeliver"),
        },
    )
    def post(self, request: Request) -> Response:
        event = verify_stripe_event(payload=request._request.body, signature=request.headers.get("Stripe-Signature"))
        outcome = handle_stripe_event(event=event)
        return Response({"outcome": outcome, "event_id": event.id})
