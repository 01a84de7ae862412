"""Staff API: close an order (queues its POS push), queue it again, list and requeue sync jobs.

Thin: parse, call one service, render. Errors are core's DomainError hierarchy, rendered
by the project's exception handler as {"error": <code>, ...}.
"""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.actors import signed_in_user
from core.api_schema import error_response
from pos_sync import services
from pos_sync.models import SyncJob, SyncJobStatus

# Every staff endpoint can answer these (the default authentication answers 403, not 401, to a
# caller without a session or token).
BAD_INPUT = error_response("Malformed body or parameter")
NOT_STAFF = error_response("Not signed in, or not staff")


class SyncJobOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = SyncJob
        fields = [
            "id",
            "order",
            "provider",
            "status",
            "attempts",
            "next_attempt_at",
            "last_error_code",
            "last_error",
            "provider_order_id",
            "provider_payment_id",
            "created_at",
        ]


class OrderCloseApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "PosOrderCloseInput"  # component names are global across apps

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        status = serializers.CharField()
        sync_job = SyncJobOutputSerializer()

        class Meta:
            ref_name = "PosOrderClosed"

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: BAD_INPUT,
            403: NOT_STAFF,
            404: error_response("No such order"),
            409: error_response("The order changed meanwhile"),
            422: error_response("The order is not open"),
        },
    )
    def post(self, request: Request, order_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order = services.close_order(
            order_id=order_id, actor=signed_in_user(request), reason=data.validated_data["reason"]
        )
        job = order.sync_jobs.order_by("-id").first()
        return Response(self.OutputSerializer({"id": order.pk, "status": order.status, "sync_job": job}).data)


class OrderSyncApi(APIView):
    """Queue a closed order for its POS: 201 with a new job, 200 with the live job already queued."""

    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        provider = serializers.CharField(required=False, max_length=30)

        class Meta:
            ref_name = "PosOrderSyncInput"

    @extend_schema(
        request=InputSerializer,
        responses={
            200: SyncJobOutputSerializer,
            201: SyncJobOutputSerializer,
            400: BAD_INPUT,
            403: NOT_STAFF,
            404: error_response("No such order"),
            422: error_response("The order is not closed"),
        },
    )
    def post(self, request: Request, order_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job, created = services.enqueue_sync_job(
            order_id=order_id, actor=signed_in_user(request), provider=data.validated_data.get("provider")
        )
        return Response(SyncJobOutputSerializer(job).data, status=status.HTTP_201_CREATED if created else 200)


class SyncJobListApi(ListAPIView):
    permission_classes = [IsAdminUser]
    serializer_class = SyncJobOutputSerializer

    @extend_schema(
        parameters=[OpenApiParameter("status", enum=SyncJobStatus.values, required=False)],
        responses={
            200: SyncJobOutputSerializer(many=True),
            400: error_response("Unknown status"),
            403: NOT_STAFF,
            404: error_response("No such page"),
        },
    )
    def get(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[SyncJob]:
        jobs = SyncJob.objects.order_by("-id")
        wanted = self.request.query_params.get("status")
        if wanted:
            if wanted not in SyncJobStatus.values:
                raise serializers.ValidationError({"status": f"One of {', '.join(SyncJobStatus.values)}."})
            jobs = jobs.filter(status=wanted)
        return jobs


class SyncJobRequeueApi(APIView):
    permission_classes = [IsAdminUser]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, default="")

        class Meta:
            ref_name = "PosSyncJobRequeueInput"

    @extend_schema(
        request=InputSerializer,
        responses={
            200: SyncJobOutputSerializer,
            400: BAD_INPUT,
            403: error_response("Not signed in, not staff, or not allowed to requeue"),
            404: error_response("No such job"),
            409: error_response("Someone else moved the job first"),
            422: error_response("Not dead, or the order already has a live job"),
        },
    )
    def post(self, request: Request, job_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = services.requeue_sync_job(
            job_id=job_id, actor=signed_in_user(request), reason=data.validated_data["reason"]
        )
        job.refresh_from_db()
        return Response(SyncJobOutputSerializer(job).data)
