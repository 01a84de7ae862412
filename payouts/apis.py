"""The payouts HTTP API: parse, call one service, render. Errors are rendered by core.api_errors."""

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.transitions import available_transitions
from core.actors import signed_in_user
from core.api_schema import ErrorSerializer, error_response
from core.errors import NotFound, PermissionDenied
from core.permissions import IsSuperAdmin
from payouts import selectors, services, webhooks
from payouts.models import Payout, PayoutStatus

# Token first: an anonymous caller gets 401 with WWW-Authenticate, not the 403 Session would give.
AUTHENTICATION = [TokenAuthentication, SessionAuthentication]
REVIEWERS_ONLY = "Only super-admins may review payouts."  # IsSuperAdmin's 403 detail


class PayoutOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    affiliate = serializers.IntegerField(source="affiliate_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=PayoutStatus.choices)
    reason = serializers.CharField()
    reviewed_by = serializers.SerializerMethodField()
    reviewed_at = serializers.DateTimeField(allow_null=True)
    attempt = serializers.IntegerField()
    wise_transfer_id = serializers.CharField()
    allowed_transitions = serializers.SerializerMethodField()

    def get_reviewed_by(self, payout: Payout) -> str | None:
        return payout.reviewed_by.get_username() if payout.reviewed_by is not None else None

    def get_allowed_transitions(self, payout: Payout) -> list[str]:
        """Target states this caller can move the payout to now (conditions and permission checked)."""
        user = self.context["request"].user
        return sorted({option.target for option in available_transitions(payout, user=user)})


class PayoutConflictErrorSerializer(ErrorSerializer):
    current_status = serializers.CharField(allow_null=True, help_text="null: the payout no longer exists")
    current_reviewer = serializers.CharField(allow_null=True, help_text="The last person who decided")
    reviewed_at = serializers.DateTimeField(allow_null=True)
    decided_status = serializers.CharField(allow_null=True, help_text="What that person decided")
    current_actor = serializers.CharField(allow_null=True, help_text="Who (or which job) moved it last")
    expected_status = serializers.CharField()


class PayoutIllegalTransitionErrorSerializer(ErrorSerializer):
    allowed = serializers.ListField(child=serializers.CharField())

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"], fields["to"] = serializers.CharField(), serializers.CharField()
        return fields


class PayoutBalanceErrorSerializer(ErrorSerializer):
    """insufficient_balance: what the affiliate's ledger account still covers, in major units
    (negative while a reversal's clawback is carried forward)."""

    available_balance = serializers.DecimalField(max_digits=14, decimal_places=2)
    requested = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()


# A 422 is either an illegal move (from, to, allowed) or a balance refusal (available_balance ...):
# approve, retry and "PUT status" can answer both, so the schema says one of the two.
PAYOUT_REFUSAL = PolymorphicProxySerializer(
    component_name="PayoutRefusal",
    serializers=[PayoutIllegalTransitionErrorSerializer, PayoutBalanceErrorSerializer],
    resource_type_field_name=None,
)


class PayoutPageSerializer(serializers.Serializer):
    """PageNumberPagination's envelope around the payouts."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PayoutOutputSerializer(many=True)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    described = {
        400: error_response("Malformed body or unknown status value"),
        401: error_response("Not authenticated"),
        403: error_response("Not allowed (super-admins only)"),
        404: error_response("No such payout"),
        409: error_response("The payout is no longer in the state acted on", PayoutConflictErrorSerializer),
        422: OpenApiResponse(PAYOUT_REFUSAL, description="Illegal transition, or a balance that no longer covers it"),
    }
    return {code: described[code] for code in codes}


def _render(request: Request, payout: Payout, code: int = status.HTTP_200_OK) -> Response:
    return Response(PayoutOutputSerializer(payout, context={"request": request}).data, status=code)


class PayoutListApi(APIView):
    """GET: super-admins see every payout, an affiliate its own. POST: an affiliate requests a payout."""

    authentication_classes = AUTHENTICATION
    permission_classes = [IsAuthenticated]

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=PayoutStatus.choices, required=False)

    class InputSerializer(serializers.Serializer):
        amount = serializers.DecimalField(max_digits=12, decimal_places=2)
        currency = serializers.RegexField(r"^[A-Z]{3}$", help_text="ISO 4217, e.g. EUR")

        class Meta:
            ref_name = "PayoutRequestInput"

    OutputSerializer = PayoutOutputSerializer

    @extend_schema(
        operation_id="payouts_list",
        parameters=[
            OpenApiParameter("status", enum=PayoutStatus.values, required=False),
            OpenApiParameter("page", int, required=False, description="1-based page of 50"),
        ],
        responses={
            200: PayoutPageSerializer,
            **_errors(400, 401),
            404: error_response("No such page"),
        },
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        payouts = selectors.payout_list(user=signed_in_user(request), status=filters.validated_data.get("status"))
        paginator = PageNumberPagination()
        page = paginator.paginate_queryset(payouts, request, view=self)
        return paginator.get_paginated_response(
            self.OutputSerializer(page, many=True, context={"request": request}).data
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            201: PayoutOutputSerializer,
            **_errors(400, 401, 403),
            422: error_response("insufficient_balance", PayoutBalanceErrorSerializer),
        },
    )
    def post(self, request: Request) -> Response:
        affiliate = getattr(request.user, "affiliate", None)
        if affiliate is None:
            raise PermissionDenied("Only affiliates can request payouts.")
        data = _validated(self.InputSerializer, request.data)
        payout = services.request_payout(affiliate=affiliate, actor=signed_in_user(request), **data)
        return _render(request, payout, status.HTTP_201_CREATED)


class PayoutDetailApi(APIView):
    """GET one payout; PUT {"status", "expected_status", "reason"} moves it (super-admins only)."""

    authentication_classes = AUTHENTICATION
    super_admin_message = REVIEWERS_ONLY

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=PayoutStatus.choices)
        expected_status = serializers.ChoiceField(choices=PayoutStatus.choices, help_text="The state you acted on")
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

        class Meta:
            ref_name = "PayoutStatusInput"

    OutputSerializer = PayoutOutputSerializer

    def get_permissions(self) -> list[BasePermission]:
        return [IsSuperAdmin()] if self.request.method == "PUT" else [IsAuthenticated()]

    @extend_schema(responses={200: PayoutOutputSerializer, **_errors(401, 404)})
    def get(self, request: Request, payout_id: int) -> Response:
        payout = selectors.payout_list(user=signed_in_user(request)).filter(pk=payout_id).first()
        if payout is None:
            raise NotFound(f"Payout #{payout_id} does not exist.")
        return _render(request, payout)

    @extend_schema(
        request=InputSerializer, responses={200: PayoutOutputSerializer, **_errors(400, 401, 403, 404, 409, 422)}
    )
    def put(self, request: Request, payout_id: int) -> Response:
        data = _validated(self.InputSerializer, request.data)
        payout = services.set_payout_status(payout_id=payout_id, actor=signed_in_user(request), **data)
        return _render(request, payout)


class _PayoutActionApi(APIView):
    """One named review action; the row must still be in the action's source state (else 409)."""

    authentication_classes = AUTHENTICATION
    permission_classes = [IsSuperAdmin]
    super_admin_message = REVIEWERS_ONLY
    service: Any = None

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)

        class Meta:
            ref_name = "PayoutActionInput"

    OutputSerializer = PayoutOutputSerializer

    @extend_schema(
        request=InputSerializer, responses={200: PayoutOutputSerializer, **_errors(400, 401, 403, 404, 409, 422)}
    )
    def post(self, request: Request, payout_id: int) -> Response:
        data = _validated(self.InputSerializer, request.data)
        payout = type(self).service(payout_id=payout_id, actor=signed_in_user(request), reason=data["reason"])
        return _render(request, payout)


class PayoutApproveApi(_PayoutActionApi):
    """requested -> approved (KYC verified, else 422 kyc_not_verified); the Wise transfer follows."""

    service = staticmethod(services.approve_payout)


class PayoutRejectApi(_PayoutActionApi):
    """requested -> rejected."""

    service = staticmethod(services.reject_payout)


class PayoutCancelApi(_PayoutActionApi):
    """approved -> cancelled, only before the dispatch started (then: cancel at Wise)."""

    service = staticmethod(services.cancel_payout)


class PayoutRetryApi(_PayoutActionApi):
    """failed -> requested (new attempt) or cancelled -> requested (re-review)."""

    service = staticmethod(services.retry_payout)


class WiseWebhookApi(APIView):
    """Wise calls this; it authenticates by RSA signature, not by session or token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        outcome = serializers.CharField()

        class Meta:
            ref_name = "WiseWebhookOutput"

    @extend_schema(
        request=None,
        responses={
            200: OutputSerializer,
            400: error_response("Bad signature or body"),
        },
    )
    def post(self, request: Request) -> Response:
        payload = request._request.body  # the raw bytes the signature covers
        webhooks.verify_wise_signature(payload=payload, signature=request.headers.get("X-Signature-SHA256"))
        change = webhooks.parse_state_change(payload)
        if change is None:
            return Response({"outcome": "ignored"})
        outcome = services.record_wise_state(
            transfer_id=change.transfer_id, state=change.state, occurred_at=change.occurred_at
        )
        return Response({"outcome": str(outcome)})


def _validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
