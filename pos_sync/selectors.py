from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, TypeAlias, TypedDict

from django.db.models import Count, OuterRef, QuerySet, Subquery

from pos_sync.models import LIVE_STATUSES, PosConnection, SyncJob, SyncJobStatus

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class OrderFirstAttempt(TypedDict):
    order_first_attempted_at: datetime | None


if TYPE_CHECKING:
    # A SyncJob read through with_order_first_attempt().
    SyncJobWithOrderFirstAttempt: TypeAlias = WithAnnotations[SyncJob, OrderFirstAttempt]


def due_jobs(*, now: datetime) -> QuerySet[SyncJob]:
    """Live jobs whose time has come (pending, or failed and backed off long enough), oldest due first."""
    return SyncJob.objects.filter(status__in=LIVE_STATUSES, next_attempt_at__lte=now).order_by("next_attempt_at", "id")


def live_job(*, order_id: int, provider: str) -> SyncJob | None:
    return SyncJob.objects.filter(order_id=order_id, provider=provider, status__in=LIVE_STATUSES).first()


def with_order_first_attempt(jobs: QuerySet[SyncJob]) -> "QuerySet[SyncJobWithOrderFirstAttempt]":
    """Each job annotated with `order_first_attempted_at`: when any job first tried to push its
    order to its provider (history included; None before the first attempt)."""
    history = SyncJob.objects.filter(
        order_id=OuterRef("order_id"), provider=OuterRef("provider"), first_attempted_at__isnull=False
    )
    return jobs.annotate(
        order_first_attempted_at=Subquery(history.order_by("first_attempted_at").values("first_attempted_at")[:1])
    )


class RecordedPush(NamedTuple):
    order_id: int
    job_id: int  # the latest job that recorded it: the higher, the more recent our books' word


def recorded_provider_orders(
    *, connection_id: int, provider: str, provider_order_ids: Iterable[str]
) -> dict[str, RecordedPush]:
    """{provider order id: our order and job} for those of `provider_order_ids` that one of this
    connection's sync jobs recorded: our books' proof that the provider order is ours."""
    ids = [i for i in set(provider_order_ids) if i]
    if not ids:
        return {}
    rows = (
        SyncJob.objects.filter(provider=provider, order__connection_id=connection_id, provider_order_id__in=ids)
        .order_by("id")
        .values_list("provider_order_id", "order_id", "id")
    )
    return {provider_order_id: RecordedPush(order_id, job_id) for provider_order_id, order_id, job_id in rows}


def dead_jobs() -> QuerySet[SyncJob]:
    """Dead letters: jobs that gave up and wait for a person to requeue them, oldest first."""
    return SyncJob.objects.filter(status=SyncJobStatus.DEAD).order_by("created_at", "id")


def job_counts_by_status(queryset: QuerySet[SyncJob] | None = None) -> dict[str, int]:
    """{status: count} for every status, zeros included (the admin changelist header)."""
    queryset = SyncJob.objects.all() if queryset is None else queryset
    counted = dict(queryset.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {status: counted.get(status, 0) for status in SyncJobStatus.values}


def reconcilable_connections(*, connection_ids: list[int] | None = None) -> QuerySet[PosConnection]:
    connections = PosConnection.objects.filter(is_active=True).order_by("id")
    if connection_ids:
        connections = connections.filter(pk__in=connection_ids)
    return connections
