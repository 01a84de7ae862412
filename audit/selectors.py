from datetime import datetime, timedelta
from typing import TypedDict

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Model, Q, QuerySet, Sum
from django.utils import timezone

from audit.checks import fsm_state_fields
from audit.models import AuditEntry, BeaconAlert, BeaconCount, CriticalBeacon, FieldChange
from audit.severity import beacon_kind
from core.admin_links import admin_change_path


class BeaconTotal(TypedDict):
    kind: str
    total: int


def history_for(obj: Model) -> QuerySet[AuditEntry]:
    """The audit trail of one object, newest first."""
    return (
        AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(type(obj)), object_id=str(obj.pk))
        .select_related("actor")
        .order_by("-id")
    )


def field_changes_for(obj: Model, *, field: str | None = None) -> QuerySet[FieldChange]:
    """The recorded changes of one object's tracked fields (audit.field_trail), newest first."""
    changes = FieldChange.objects.filter(model=obj._meta.label_lower, object_id=str(obj.pk))
    return (changes.filter(field=field) if field else changes).order_by("-id")


def last_field_change(obj: Model, field: str) -> FieldChange | None:
    """When, by whom and from what one tracked field got its current value; None if never recorded."""
    return field_changes_for(obj, field=field).first()


def open_alerts() -> QuerySet[BeaconAlert]:
    return BeaconAlert.objects.filter(acknowledged_at__isnull=True).order_by("-hour")


def critical_beacons(*, kind: str, hour: datetime) -> QuerySet[CriticalBeacon]:
    """The critical beacons of one kind in one hour, first first."""
    return CriticalBeacon.objects.filter(kind=kind, hour=hour).order_by("at", "pk")


def beacon_subject(beacon: CriticalBeacon) -> tuple[str | None, str | None]:
    """("payouts.Payout #7", its admin change path) from a beacon's details and its kind's declared
    subject (audit.severity), as far as they tell; the path is None for a model not in the admin."""
    kind = beacon_kind(beacon.kind)
    pk = beacon.details.get(kind.subject_key) if kind.subject else None
    if pk is None or pk == "":
        return None, None
    try:
        label = apps.get_model(kind.subject)._meta.label
    except (LookupError, ValueError):
        label = kind.subject
    return f"{label} #{pk}", admin_change_path(kind.subject, pk)


def beacon_totals(*, since: datetime) -> list[BeaconTotal]:
    return list(
        BeaconCount.objects.filter(hour__gte=since).values("kind").annotate(total=Sum("count")).order_by("-total")
    )


def transition_counts(*, now: datetime | None = None) -> dict[str, int]:
    now = now or timezone.now()
    start_of_day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return AuditEntry.objects.aggregate(
        today=Count("id", filter=Q(at__gte=start_of_day)),
        last_30_days=Count("id", filter=Q(at__gte=now - timedelta(days=30))),
    )


def beacon_counts_by_outcome(*, since: datetime) -> dict[str, int]:
    """Lost races (409s) and refused transitions (422s) since `since`, from the beacon counters."""
    rows = BeaconCount.objects.filter(hour__gte=since)
    return rows.aggregate(
        conflicts=Sum("count", filter=Q(kind__endswith="race_lost"), default=0),
        refused=Sum("count", filter=Q(kind__endswith="transition_refused"), default=0),
        all=Sum("count", default=0),
    )


def audited_content_types() -> list[ContentType]:
    """The types of record the audit trail can hold: every model with a django-fsm state field (each
    of its moves writes a row, audit.checks), and any other type that has rows (a model whose state
    field was since removed), ordered by name."""
    declared = ContentType.objects.get_for_models(*(model for model, _fields in fsm_state_fields())).values()
    with_rows = ContentType.objects.filter(pk__in=AuditEntry.objects.values("content_type_id"))
    found = {content_type.pk: content_type for content_type in [*declared, *with_rows]}
    return sorted(found.values(), key=lambda content_type: (str(content_type), content_type.pk))
