"""The affiliate's own data as JSON. Another affiliate's objects are 404, like objects that do not exist."""

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from affiliates import selectors as affiliate_selectors
from core.api_schema import error_response
from portal import selectors

NOT_FOUND = error_response("Not an affiliate, not one of your objects, or no such page")
NOT_AUTHENTICATED = error_response("Not signed in (not_authenticated)")


class TierSerializer(serializers.Serializer):
    name = serializers.CharField()
    commission_rate = serializers.IntegerField()
    threshold = serializers.DecimalField(max_digits=12, decimal_places=2)


class CommissionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    stripe_invoice_id = serializers.CharField()
    # With the currency's own decimals ("0.200" KWD, "20.00" USD, "500" JPY), never rounded to 2.
    amount = serializers.DecimalField(source="amount_display", max_digits=15, decimal_places=None)
    currency = serializers.CharField()
    rate = serializers.IntegerField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class PayoutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField()


class AffiliateMeApi(APIView):
    """The affiliate dashboard: tier, progress, weekly commissions, history, commissions, payouts, balance."""

    class OutputSerializer(serializers.Serializer):
        class AffiliateSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            username = serializers.CharField(source="user.get_username")
            commission_rate = serializers.IntegerField()
            kyc_status = serializers.CharField()

        class ProgressSerializer(serializers.Serializer):
            current = TierSerializer(allow_null=True)
            next = TierSerializer(allow_null=True)
            window_total = serializers.DecimalField(max_digits=14, decimal_places=2)
            percent = serializers.IntegerField()
            remaining = serializers.DecimalField(max_digits=14, decimal_places=2)

        class WeekSerializer(serializers.Serializer):
            week_start = serializers.DateField()
            total = serializers.DecimalField(max_digits=14, decimal_places=2)

        class TierEventSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            from_rate = serializers.IntegerField()
            to_rate = serializers.IntegerField()
            tier_name = serializers.CharField()
            is_promotion = serializers.BooleanField()
            cause = serializers.CharField()
            created_at = serializers.DateTimeField()

        class CommissionPageSerializer(serializers.Serializer):
            count = serializers.IntegerField(source="paginator.count")
            results = CommissionSerializer(source="object_list", many=True)

        class Meta:
            ref_name = "AffiliateDashboard"  # component names are global across apps

        affiliate = AffiliateSerializer()
        currency = serializers.CharField()
        progress = ProgressSerializer()
        weekly = WeekSerializer(many=True)
        tier_history = TierEventSerializer(many=True)
        commissions = CommissionPageSerializer()
        payouts = PayoutSerializer(many=True)
        available_balance = serializers.DecimalField(max_digits=14, decimal_places=2)

    @extend_schema(responses={200: OutputSerializer, 403: NOT_AUTHENTICATED, 404: NOT_FOUND})
    def get(self, request: Request) -> Response:
        data = selectors.dashboard_for(user=request.user, now=timezone.now())
        return Response(self.OutputSerializer(data).data)


class CommissionPageSerializer(serializers.Serializer):
    """PageNumberPagination's envelope around the commissions."""

    class Meta:
        ref_name = "AffiliateCommissionPage"  # component names are global across apps

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CommissionSerializer(many=True)


class AffiliateCommissionListApi(APIView):
    class Pagination(PageNumberPagination):
        page_size = selectors.COMMISSIONS_PER_PAGE

    @extend_schema(
        operation_id="affiliates_me_commissions_list",
        parameters=[OpenApiParameter("page", int, required=False, description="1-based page")],
        responses={200: CommissionPageSerializer, 403: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request) -> Response:
        affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
        paginator = self.Pagination()
        page = paginator.paginate_queryset(affiliate_selectors.commissions_for(affiliate=affiliate), request, view=self)
        return paginator.get_paginated_response(CommissionSerializer(page, many=True).data)


class AffiliateCommissionDetailApi(APIView):
    @extend_schema(responses={200: CommissionSerializer, 403: NOT_AUTHENTICATED, 404: NOT_FOUND})
    def get(self, request: Request, commission_id: int) -> Response:
        affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
        commission = affiliate_selectors.commission_for(affiliate=affiliate, commission_id=commission_id)
        return Response(CommissionSerializer(commission).data)


class AffiliatePayoutDetailApi(APIView):
    @extend_schema(responses={200: PayoutSerializer, 403: NOT_AUTHENTICATED, 404: NOT_FOUND})
    def get(self, request: Request, payout_id: int) -> Response:
        affiliate = affiliate_selectors.affiliate_for_user(user=request.user, now=timezone.now())
        payout = selectors.payout_for(affiliate=affiliate, payout_id=payout_id)
        return Response(PayoutSerializer(payout).data)
