from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from django.apps import apps
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator, capfirst

from audit import selectors, services
from audit.models import AuditEntry, BeaconAlert, BeaconCount, CriticalBeacon, FieldChange
from audit.state_diagram import humanise
from core.actors import SystemActor, signed_in_user
from core.admin_base import ReadOnlyAdmin
from core.admin_links import admin_change_path
from core.errors import ValidationError
from core.money import format_money

REASON_CHARS = 120  # longer reasons are cut in the list; the row's own page has the whole text
REFERENCE_CHARS = 10  # a request or task id's first 9 characters and an ellipsis
SYSTEM_PREFIX = SystemActor(name="").label  # "system:", how the trail labels a job


class AuditedModelFilter(admin.SimpleListFilter):
    """Only the types of record the trail can hold (audit.selectors.audited_content_types), not
    every content type of the project."""

    title = "type of record"
    parameter_name = "record_type"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        content_types = selectors.audited_content_types()
        names = [record_type_name(ct) for ct in content_types]
        # Two models of one name (an "Order" in two apps) are told apart by their app.
        return [
            (str(ct.pk), name if names.count(name) == 1 else f"{name} ({ct.app_labeled_name.split(' | ')[0]})")
            for ct, name in zip(content_types, names, strict=True)
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditEntry]) -> QuerySet[AuditEntry]:
        value = self.value()
        return queryset.filter(content_type_id=int(value)) if value and value.isdigit() else queryset


def titled(filter_class: type[admin.FieldListFilter], title: str) -> type[admin.FieldListFilter]:
    """A field's list filter under a heading in plain words instead of the column's name."""

    class Titled(filter_class):  # type: ignore[valid-type,misc]  # a subclass of the class passed in
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return Titled


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The trail for finance staff: each row says which record changed, how, by whom and why, and
    links to the record and to the person; the hash chain is on each row's own page."""

    list_display = ["when", "record", "change", "by", "reason_shown", "reference"]
    list_display_links = ["when"]
    list_filter = [
        AuditedModelFilter,
        ("target", titled(admin.AllValuesFieldListFilter, "new status")),
        ("transition", titled(admin.AllValuesFieldListFilter, "action")),
    ]
    search_fields = ["object_id", "actor_label", "correlation_id", "reason"]
    search_help_text = "Search by record number, person or job, request reference or reason."
    date_hierarchy = "at"
    list_select_related = ["content_type"]
    change_list_template = "admin/audit/auditentry/change_list.html"
    fieldsets = [
        ("What changed", {"fields": ["record", "change", "reason"]}),
        ("Who and when", {"fields": ["by", "when", "reference_full"]}),
        ("Tamper evidence", {"fields": ["chain_position", "previous_fingerprint", "fingerprint"]}),
    ]
    readonly_fields = [
        "record",
        "change",
        "by",
        "when",
        "reference_full",
        "chain_position",
        "previous_fingerprint",
        "fingerprint",
    ]

    @admin.display(description="When", ordering="at")
    def when(self, entry: AuditEntry) -> str:
        at = timezone.localtime(entry.at)
        # Date and time on two lines in the list (each kept whole): the column stays narrow.
        return format_html(
            '<span class="audit-whole">{}</span> <span class="audit-whole">{}</span>',
            f"{at:%Y-%m-%d}",
            f"{at:%H:%M:%S}",
        )

    @admin.display(description="Record")
    def record(self, entry: AuditEntry) -> str:
        name = f"{record_type_name(entry.content_type)} #{entry.object_id}"
        path = admin_change_path(f"{entry.content_type.app_label}.{entry.content_type.model}", entry.object_id)
        return format_html('<a href="{}">{}</a>', path, name) if path else name

    @admin.display(description="Change", ordering="transition")
    def change(self, entry: AuditEntry) -> str:
        model = entry.content_type.model_class()
        return format_html(
            '{}<div class="audit-quiet">{} &rarr; {}</div>',
            capfirst(humanise(entry.transition)),
            state_label(model, entry.field, entry.source),
            state_label(model, entry.field, entry.target),
        )

    @admin.display(description="By", ordering="actor_label")
    def by(self, entry: AuditEntry) -> str:
        """The person's user page; a system job (a webhook, a scheduled task) is named, not linked."""
        if entry.actor_id is None:
            job = entry.actor_label.removeprefix(SYSTEM_PREFIX)
            if job == entry.actor_label:
                return entry.actor_label
            # "task:push_pending_orders" -> "push pending orders (task)": words that wrap in a narrow column.
            kind, _, name = job.rpartition(":")
            named = f"{humanise(name)} ({kind})" if kind else humanise(name)
            return format_html('System<div class="audit-quiet">{}</div>', named)
        path = admin_change_path(settings.AUTH_USER_MODEL, entry.actor_id)
        return format_html('<a href="{}">{}</a>', path, entry.actor_label) if path else entry.actor_label

    @admin.display(description="Reason")
    def reason_shown(self, entry: AuditEntry) -> str:
        short = Truncator(entry.reason).chars(REASON_CHARS)
        return format_html('<span title="{}">{}</span>', entry.reason, short) if short != entry.reason else short

    @admin.display(description="Request / job")
    def reference(self, entry: AuditEntry) -> str:
        """The request or task id, shortened (its full value in the tooltip), linking to every change
        made by the same request or job."""
        if not entry.correlation_id:
            return "-"
        query = urlencode({"correlation_id": entry.correlation_id})
        return format_html(
            '<a href="?{}" title="{} (show every change it made)"><code>{}</code></a>',
            query,
            entry.correlation_id,
            Truncator(entry.correlation_id).chars(REFERENCE_CHARS),
        )

    @admin.display(description="Request / job reference")
    def reference_full(self, entry: AuditEntry) -> str:
        return entry.correlation_id or "-"

    @admin.display(description="Position in this record's history")
    def chain_position(self, entry: AuditEntry) -> str:
        return f"Change {entry.seq} of this record"

    @admin.display(description="Fingerprint of the change before (SHA-256)")
    def previous_fingerprint(self, entry: AuditEntry) -> str:
        return format_html('<code style="overflow-wrap:anywhere">{}</code>', entry.previous_hash or "none (first)")

    @admin.display(description="Fingerprint of this change (SHA-256)")
    def fingerprint(self, entry: AuditEntry) -> str:
        return format_html('<code style="overflow-wrap:anywhere">{}</code>', entry.hash)


@admin.register(FieldChange)
class FieldChangeAdmin(ReadOnlyAdmin):
    """Changes of money-relevant fields (where money goes, KYC, tier terms, referral owners, POS
    credentials, what a payout or commission was created with), written by the database itself
    (audit.field_trail): nobody can edit or delete a row, here or in SQL."""

    list_display = ["when", "record", "field_shown", "change", "by", "reference"]
    list_display_links = ["when"]
    list_filter = [("model", titled(admin.AllValuesFieldListFilter, "type of record")), "operation"]
    search_fields = ["object_id", "field", "actor_label", "correlation_id"]
    search_help_text = "Search by record number, field, person or job, or request reference."
    date_hierarchy = "at"
    change_list_template = "admin/audit/auditentry/change_list.html"  # the same narrow-table layout
    readonly_fields = ("record", "field_shown", "change", "by", "when", "reference_full")
    fields = readonly_fields

    when = AuditEntryAdmin.when
    reference = AuditEntryAdmin.reference
    reference_full = AuditEntryAdmin.reference_full

    @admin.display(description="By", ordering="actor_label")
    def by(self, change: FieldChange) -> str:
        if change.actor_id is None and not change.actor_label:
            return "Not known: made directly in the database"
        return AuditEntryAdmin.by(self, change)  # type: ignore[arg-type]  # same actor_id / actor_label

    @admin.display(description="Record")
    def record(self, change: FieldChange) -> str:
        try:
            name = capfirst(apps.get_model(change.model)._meta.verbose_name)
        except LookupError:
            name = change.model
        path = admin_change_path(change.model, change.object_id)
        label = f"{name} #{change.object_id}"
        return format_html('<a href="{}">{}</a>', path, label) if path else label

    @admin.display(description="Field", ordering="field")
    def field_shown(self, change: FieldChange) -> str:
        try:
            return str(capfirst(apps.get_model(change.model)._meta.get_field(change.field).verbose_name))
        except (LookupError, FieldDoesNotExist):
            return change.field

    @admin.display(description="Change")
    def change(self, change: FieldChange) -> str:
        if change.value_hidden:
            return f"{change.get_operation_display().capitalize()} (a secret: its value is never recorded)"
        old, new = shown_value(change.old_value, change.currency), shown_value(change.new_value, change.currency)
        if change.operation == FieldChange.Operation.CREATED:
            return format_html("Set to {}", new)
        if change.operation == FieldChange.Operation.DELETED:
            return format_html("Deleted (was {})", old)
        return format_html("{} &rarr; {}", old, new)


def shown_value(value: str | None, currency: str) -> str:
    """A recorded value as a person reads it: an amount as money, an empty one said so."""
    if value in (None, ""):
        return "(empty)"
    if currency:
        try:
            return format_money(Decimal(value), currency)
        except (InvalidOperation, ValidationError):
            pass  # not a number, or a currency we do not know: shown as recorded
    return str(value)


def record_type_name(content_type: ContentType) -> str:
    """'Payout', 'Sync job': the model's own name, capitalised; a type whose model is gone keeps its key."""
    model = content_type.model_class()
    return str(capfirst(model._meta.verbose_name)) if model else f"{content_type.app_label}.{content_type.model}"


@lru_cache(maxsize=256)
def state_label(model: type[Model] | None, field_name: str, value: str) -> str:
    """A state as its choices name it ('Processing'); the stored value when the field is gone."""
    try:
        field = model._meta.get_field(field_name) if model else None
    except FieldDoesNotExist:
        field = None
    labels = dict(getattr(field, "flatchoices", None) or [])
    return str(labels.get(value, value))


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
