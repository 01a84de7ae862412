"""Super-admin API over loyalty discounts: list them, revoke one (the same service as the admin)."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import signed_in_user
from core.api_schema import error_responses
from core.permissions import IsSuperAdmin
from loyalty import selectors, services
from loyalty.models import DiscountStatus, LoyaltyDiscount


class DiscountOutputSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.get_username")
    subscription = serializers.CharField(source="subscription.stripe_subscription_id")

    class Meta:
        ref_name = "LoyaltyDiscount"
        model = LoyaltyDiscount
        fields = [
            "id",
            "user",
            "subscription",
            "anniversary",
            "status",
            "code",
            "stripe_promotion_code_id",
            "attempts",
            "last_error",
            "created_at",
            "applied_at",
            "revoked_at",
        ]


ERRORS = error_responses({401: "Not logged in", 403: "Not a super-admin"})


class DiscountListApi(ListAPIView):
    permission_classes = [IsSuperAdmin]
    serializer_class = DiscountOutputSerializer

    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=DiscountStatus.choices, required=False)

        class Meta:
            ref_name = "LoyaltyDiscountFilter"

    def get_queryset(self) -> QuerySet[LoyaltyDiscount]:
        # Validated, not passed through: an unknown value is a 400, and a NUL byte never reaches
        # PostgreSQL (which refuses it in text and answered 500 before; found by the API fuzzer).
        filters = self.FilterSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        status = filters.validated_data.get("status")
        queryset = selectors.discounts_for_admin()
        return queryset.filter(status=status) if status else queryset

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=DiscountStatus.values)],
        responses={
            200: DiscountOutputSerializer(many=True),
            **error_responses({400: "Unknown status", 404: "No such page"}),
            **ERRORS,
        },
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)


class DiscountRevokeApi(APIView):
    permission_classes = [IsSuperAdmin]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")
        expected_status = serializers.ChoiceField(choices=DiscountStatus.choices, required=False)

        class Meta:
            ref_name = "LoyaltyDiscountRevokeInput"

    @extend_schema(
        request=InputSerializer,
        responses={
            200: DiscountOutputSerializer,
            **error_responses(
                {
                    400: "Malformed body",
                    404: "No such discount",
                    409: "The discount is no longer in the expected status",
                    422: "Already revoked (illegal transition)",
                }
            ),
            **ERRORS,
        },
    )
    def post(self, request: Request, discount_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        discount = services.revoke_discount(
            discount_id=discount_id,
            actor=signed_in_user(request),
            expected_status=data.validated_data.get("expected_status"),
            reason=data.validated_data["reason"] or "revoked through the API",
        )
        discount = selectors.discounts_for_admin().get(pk=discount.pk)
        return Response(DiscountOutputSerializer(discount).data)
