from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from audit import selectors, services
from audit.models import AuditEntry, BeaconAlert, BeaconCount, CriticalBeacon
from core.actors import signed_in_user
from core.admin_base import ReadOnlyAdmin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "content_type", "object_id", "source", "target", "actor_label", "reason", "correlation_id"]
    list_filter = ["content_type", "target", "transition"]
    search_fields = ["object_id", "actor_label", "correlation_id", "reason"]
    date_hierarchy = "at"
    list_select_related = ["content_type"]


@admin.register(BeaconCount)
class BeaconCountAdmin(ReadOnlyAdmin):
    list_display = ["hour", "kind", "count"]
    list_filter = ["kind"]
    date_hierarchy = "hour"


@admin.register(CriticalBeacon)
class CriticalBeaconAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "object_link", "details", "correlation_id"]
    list_filter = ["kind"]
    date_hierarchy = "at"

    @admin.display(description="object")
    def object_link(self, obj: CriticalBeacon) -> str:
        name, path = selectors.beacon_subject(obj)
        if name and path:
            return format_html('<a href="{}">{}</a>', path, name)
        return name or "-"


@admin.register(BeaconAlert)
class BeaconAlertAdmin(ReadOnlyAdmin):
    list_display = ["hour", "kind", "severity", "count", "raised_at", "acknowledged_by", "acknowledged_at"]
    list_filter = ["severity", "kind", ("acknowledged_at", admin.EmptyFieldListFilter)]
    actions = ["acknowledge"]

    # No change permission (ReadOnlyAdmin): the change page is a view page, so neither the count
    # nor who acknowledged can be edited, and a form save can never write back a stale row over a
    # concurrent acknowledgement. Acknowledging, the only change, is the action below.
    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Acknowledge selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[BeaconAlert]) -> None:
        actor = signed_in_user(request)
        done = sum(services.acknowledge_alert(alert_id=a.pk, actor=actor) for a in queryset)
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
