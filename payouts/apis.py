"""The payouts HTTP API: parse, call one service, render. Errors are rendered by core.api_errors.

Who may review is payouts.authority's one rule: the review endpoints' permission
(core.permissions.ActorAuthority) asks it before anything is read, and the services ask it again
with the payout (segregation of duties). The reason is validated by the services
(payouts.reasons), so the API refuses exactly what the admin refuses.
"""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.fields import empty
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.transitions import available_transitions
from core.actors import signed_in_user
from core.api_schema import ErrorSerializer, error_response
from core.errors import NotFound, PermissionDenied
from core.permissions import ActorAuthority
from payouts import selectors, services, webhooks
from payouts.authority import ensure_may_review
from payouts.models import Payout, PayoutStatus
from payouts.reasons import MAX_REASON_LENGTH

# Token first: an anonymous caller gets 401 with WWW-Authenticate, not the 403 Session would give.
AUTHENTICATION = [TokenAuthentication, SessionAuthentication]


@extend_schema_field(OpenApiTypes.STR)
class ReasonField(serializers.Field):
    """The reviewer's reason, passed on as sent: payouts.reasons.clean_decision_reason, which the
    service runs for every door, is its one validator (400 invalid_reason: control characters
    other than newline and tab, more than MAX_REASON_LENGTH characters, not text; 400
    reason_required: a reject without one). `required` only documents that the action needs one:
    a missing reason is still passed on, as "", so the service refuses it in its own words."""

    def __init__(self, *, required: bool = False, when_needed: str = "Optional", **kwargs: Any) -> None:
        need = "Required" if required else when_needed
        kwargs.setdefault("help_text", f"{need}; text, line breaks and tabs, at most {MAX_REASON_LENGTH} characters")
        super().__init__(required=required, **kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is empty:
            return True, ""
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ApprovalOutputSerializer(serializers.Serializer):
    approver = serializers.CharField(source="approver.username")
    at = serializers.DateTimeField(source="created_at")


class PayoutOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    affiliate = serializers.IntegerField(source="affiliate_id")
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.ChoiceField(choices=PayoutStatus.choices)
    reason = serializers.CharField()
    requested_by = serializers.SerializerMethodField()
    reviewed_by = serializers.SerializerMethodField()
    reviewed_at = serializers.DateTimeField(allow_null=True)
    approvals_required = serializers.SerializerMethodField(help_text="2 above the dual-approval threshold")
    approvals = serializers.SerializerMethodField(help_text="The approvals that count now, first first")
    attempt = serializers.IntegerField()
    wise_transfer_id = serializers.CharField()
    allowed_transitions = serializers.SerializerMethodField()

    def get_requested_by(self, payout: Payout) -> str | None:
        return payout.requested_by.get_username() if payout.requested_by is not None else None

    def get_reviewed_by(self, payout: Payout) -> str | None:
        return payout.reviewed_by.get_username() if payout.reviewed_by is not None else None

    def get_approvals_required(self, payout: Payout) -> int:
        return self._progress(payout).required

    @extend_schema_field(ApprovalOutputSerializer(many=True))
    def get_approvals(self, payout: Payout) -> list[dict[str, Any]]:
        return list(ApprovalOutputSerializer(self._progress(payout).approvals, many=True).data)

    def _progress(self, payout: Payout) -> selectors.ApprovalProgress:
        # Two fields read it: once per payout (a list's approvals are prefetched by payout_list).
        cached = getattr(payout, "_approval_progress", None)
        if not isinstance(cached, selectors.ApprovalProgress):
            cached = selectors.approval_progress(payout)
            payout._approval_progress = cached  # type: ignore[attr-defined]  # a per-render cache on the instance
        return cached

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
        400: error_response("Malformed body, unknown status value, or a refused or missing reason"),
        401: error_response("Not authenticated"),
        403: error_response("Not allowed (super-admins only)"),
        404: error_response("No such payout"),
        409: error_response("The payout is no longer in the state acted on", PayoutConflictErrorSerializer),
        422: OpenApiResponse(PAYOUT_REFUSAL, description="Illegal transition, or a balance that no longer covers it"),
    }
    return {code: described[code] for code in codes}


def _render(request: Request, payout: Payout, code: int = status.HTTP_200_OK) -> Response:
    return Response(PayoutOutputSerializer(payout, context={"request": request}).data, status=code)


# An approval recorded that still waits for a second super-admin's: accepted, not done.
PENDING_APPROVAL = OpenApiResponse(
    PayoutOutputSerializer, description="Approval recorded; a second super-admin must approve"
)


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
    authority = staticmethod(ensure_may_review)

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=PayoutStatus.choices)
        expected_status = serializers.ChoiceField(choices=PayoutStatus.choices, help_text="The state you acted on")
        reason = ReasonField(when_needed="Required when status is rejected, else optional")

        class Meta:
            ref_name = "PayoutStatusInput"

    OutputSerializer = PayoutOutputSerializer

    def get_permissions(self) -> list[BasePermission]:
        return [ActorAuthority()] if self.request.method == "PUT" else [IsAuthenticated()]

    @extend_schema(responses={200: PayoutOutputSerializer, **_errors(401, 404)})
    def get(self, request: Request, payout_id: int) -> Response:
        payout = selectors.payout_list(user=signed_in_user(request)).filter(pk=payout_id).first()
        if payout is None:
            raise NotFound(f"Payout #{payout_id} does not exist.")
        return _render(request, payout)

    @extend_schema(
        request=InputSerializer,
        responses={200: PayoutOutputSerializer, 202: PENDING_APPROVAL, **_errors(400, 401, 403, 404, 409, 422)},
    )
    def put(self, request: Request, payout_id: int) -> Response:
        data = _validated(self.InputSerializer, request.data)
        payout = services.set_payout_status(payout_id=payout_id, actor=signed_in_user(request), **data)
        pending = payout.status != data["status"]  # the first of two approvals: still requested
        return _render(request, payout, status.HTTP_202_ACCEPTED if pending else status.HTTP_200_OK)


class _PayoutActionApi(APIView):
    """One named review action; the row must still be in the action's source state (else 409)."""

    authentication_classes = AUTHENTICATION
    permission_classes = [ActorAuthority]
    authority = staticmethod(ensure_may_review)
    service: Any = None

    class InputSerializer(serializers.Serializer):
        reason = ReasonField()

        class Meta:
            ref_name = "PayoutActionInput"

    OutputSerializer = PayoutOutputSerializer

    @extend_schema(
        request=InputSerializer, responses={200: PayoutOutputSerializer, **_errors(400, 401, 403, 404, 409, 422)}
    )
    def post(self, request: Request, payout_id: int) -> Response:
        data = _validated(self.InputSerializer, request.data)
        payout = type(self).service(payout_id=payout_id, actor=signed_in_user(request), reason=data["reason"])
        return _render(request, payout, self.status_code(payout))

    def status_code(self, payout: Payout) -> int:
        return status.HTTP_200_OK


class PayoutApproveApi(_PayoutActionApi):
    """requested -> approved (KYC verified, else 422 kyc_not_verified); the Wise transfer follows.
    Above the dual-approval threshold the first approval answers 202 (still requested, "approvals"
    lists it) and the second, by another super-admin, 200."""

    service = staticmethod(services.approve_payout)

    @extend_schema(
        request=_PayoutActionApi.InputSerializer,
        responses={200: PayoutOutputSerializer, 202: PENDING_APPROVAL, **_errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, payout_id: int) -> Response:
        return super().post(request, payout_id)

    def status_code(self, payout: Payout) -> int:
        return status.HTTP_202_ACCEPTED if payout.status == PayoutStatus.REQUESTED else status.HTTP_200_OK


class PayoutRejectApi(_PayoutActionApi):
    """requested -> rejected; the reason is required (400 reason_required without one)."""

    service = staticmethod(services.reject_payout)

    class InputSerializer(serializers.Serializer):
        reason = ReasonField(required=True)

        class Meta:
            ref_name = "PayoutRejectInput"

    @extend_schema(
        request=InputSerializer, responses={200: PayoutOutputSerializer, **_errors(400, 401, 403, 404, 409, 422)}
    )
    def post(self, request: Request, payout_id: int) -> Response:
        return super().post(request, payout_id)


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
