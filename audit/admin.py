from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit import services
from audit.models import AuditEntry, BeaconAlert, BeaconCount
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


@admin.register(BeaconAlert)
class BeaconAlertAdmin(ReadOnlyAdmin):
    list_display = ["hour", "kind", "count", "raised_at", "acknowledged_by", "acknowledged_at"]
    list_filter = ["kind", ("acknowledged_at", admin.EmptyFieldListFilter)]
    actions = ["acknowledge"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_superuser  # acknowledging is the only change, done by the action

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[BeaconAlert]) -> None:
        actor = signed_in_user(request)
        done = sum(services.acknowledge_alert(alert_id=a.pk, actor=actor) for a in queryset)
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)
