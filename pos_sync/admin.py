"""Super-admin screens: connections (token write-only), orders with their jobs, the sync queue.

Statuses are never editable here: the only moves are the actions, and they call services.
"""

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from audit.admin_mixins import StateDiagramAdminMixin
from core.actors import signed_in_user
from core.admin_messages import report_error
from core.admin_money import Money, money_column
from core.errors import DomainError
from core.money import format_money
from pos_sync import selectors, services
from pos_sync.models import LIVE_STATUSES, Order, OrderStatus, PosConnection, SyncJob, SyncJobStatus

NEXT_ATTEMPT = "next_attempt_at"
NO_ATTEMPT = "-"


def next_attempt(job: SyncJob) -> datetime | None:
    """When the job will be tried (again): only a waiting or failed job will; a sent or given-up one
    has no next attempt, whatever its column still holds."""
    return job.next_attempt_at if job.status in LIVE_STATUSES else None


def next_attempt_text(job: SyncJob) -> str:
    # Formatted here: a readonly callable's value is shown with str() on a change page (an inline).
    return str(display_for_value(next_attempt(job), NO_ATTEMPT))


def line_item_text(item: dict[str, Any], currency: str) -> str:
    """'2 x Pad Thai at $12.50' from {"name", "quantity", "unit_price"} (orders.line_items)."""
    try:
        price = format_money(Decimal(str(item.get("unit_price"))), currency)
    except (InvalidOperation, DomainError):
        price = str(item.get("unit_price", ""))
    return f"{item.get('quantity', 1)} x {item.get('name', '')} at {price}"


class PosConnectionForm(forms.ModelForm):
    # The token is write-only: the stored value is never sent to the browser, and an empty
    # field keeps it.
    new_access_token = forms.CharField(
        label="Access token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the current token.",
    )
    clear_access_token = forms.BooleanField(label="Remove the stored token", required=False)

    class Meta:
        model = PosConnection
        fields = ["restaurant_name", "provider", "location_id", "is_active"]

    def save(self, commit: bool = True) -> PosConnection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("clear_access_token"):
            connection.access_token = ""
        elif self.cleaned_data.get("new_access_token"):
            connection.access_token = self.cleaned_data["new_access_token"]
        if commit:
            connection.save()
        return connection


@admin.register(PosConnection)
class PosConnectionAdmin(admin.ModelAdmin):
    form = PosConnectionForm
    list_display = ["restaurant_name", "provider", "location_id", "token_set", "is_active", "created_at"]
    list_filter = ["provider", "is_active"]
    search_fields = ["restaurant_name", "location_id"]

    @admin.display(boolean=True, description="token set")
    def token_set(self, obj: PosConnection) -> bool:
        return obj.has_token


class SyncJobInline(admin.TabularInline):
    model = SyncJob
    extra = 0
    can_delete = False
    show_change_link = True
    # A tuple of plain names, so that readonly_fields can take the same one (the stubs type `fields`
    # as a list of names or groups, which readonly_fields does not accept).
    fields: ClassVar[tuple[str, ...]] = (
        "status",
        "provider",
        "attempts",
        "next_attempt_shown",
        "last_error_code",
        "last_error",
        "provider_order_id",
        "provider_payment_id",
        "created_at",
    )
    readonly_fields = fields
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="next attempt")
    def next_attempt_shown(self, obj: SyncJob) -> str:
        return next_attempt_text(obj)


@admin.register(Order)
class OrderAdmin(StateDiagramAdminMixin, admin.ModelAdmin):
    list_display = ["id", "connection", "table_id", "total_shown", "placed_at", "status"]
    list_filter = ["status", "connection", "currency"]
    search_fields = ["id", "table_id", "connection__restaurant_name"]
    fields: ClassVar[tuple[str, ...]] = ("connection", "table_id", "status", "placed_at", "total_shown", "items_shown")
    readonly_fields = fields
    list_select_related = ["connection"]
    inlines = [SyncJobInline]
    actions = ["queue_for_pos"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @money_column("Total", ordering="total")
    def total_shown(self, obj: Order) -> Money | None:
        return obj.total, obj.currency

    @admin.display(description="items")
    def items_shown(self, obj: Order) -> str:
        items = obj.line_items if isinstance(obj.line_items, list) else []
        lines = ((line_item_text(item, obj.currency),) for item in items if isinstance(item, dict))
        return format_html_join("", "<div>{}</div>", lines) or "-"

    @admin.action(description="Queue selected closed orders for their POS")
    def queue_for_pos(self, request: HttpRequest, queryset: QuerySet[Order]) -> None:
        actor = signed_in_user(request)
        created = existing = 0
        for order in queryset.filter(status=OrderStatus.CLOSED).order_by("pk"):
            try:
                _job, new = services.enqueue_sync_job(order_id=order.pk, actor=actor)
            except DomainError as exc:
                report_error(request, exc, prefix=f"Order #{order.pk}: ")
                continue
            created, existing = created + new, existing + (not new)
        self.message_user(request, f"{created} job(s) queued, {existing} already queued.", messages.SUCCESS)


class LastErrorFilter(admin.SimpleListFilter):
    title = "last error"
    parameter_name = "last_error_code"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        codes = SyncJob.objects.exclude(last_error_code="").values_list("last_error_code", flat=True).distinct()
        return [("none", "No error")] + [(code, code) for code in sorted(codes)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> QuerySet[SyncJob]:
        if self.value() == "none":
            return queryset.filter(last_error_code="")
        if self.value():
            return queryset.filter(last_error_code=self.value())
        return queryset


@admin.register(SyncJob)
class SyncJobAdmin(StateDiagramAdminMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "order_link",
        "restaurant",
        "provider",
        "status",
        "attempts",
        "next_attempt_shown",
        "last_error_code",
        "short_error",
        "provider_order_id",
        "created_at",
    ]
    list_filter = [
        "status",
        "provider",
        ("order__connection", admin.RelatedOnlyFieldListFilter),
        "attempts",
        LastErrorFilter,
    ]
    search_fields = ["=order__id", "provider_order_id", "provider_payment_id", "last_error"]
    list_select_related = ["order__connection"]
    readonly_fields = [
        "order",
        "provider",
        "status",
        "attempts",
        "next_attempt_at",
        "first_attempted_at",
        "last_error_code",
        "last_error",
        "provider_order_id",
        "provider_payment_id",
        "enqueued_by",
        "created_at",
    ]
    actions = ["requeue"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_requeue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("pos_sync.requeue_syncjob")

    def get_fields(self, request: HttpRequest, obj: SyncJob | None = None) -> Any:
        # A sent or given-up job will not be tried again: its page shows no next attempt.
        fields = super().get_fields(request, obj)
        return fields if obj is None or next_attempt(obj) else [f for f in fields if f != NEXT_ATTEMPT]

    @admin.display(description="next attempt", ordering=NEXT_ATTEMPT)
    def next_attempt_shown(self, obj: SyncJob) -> str:
        return next_attempt_text(obj)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        counts = selectors.job_counts_by_status()
        labels = dict(SyncJobStatus.choices)
        status_counts = [(status, labels[status], count) for status, count in counts.items()]
        extra_context = {**(extra_context or {}), "status_counts": status_counts}
        return super().changelist_view(request, extra_context=extra_context)

    @admin.display(description="order", ordering="order_id")
    def order_link(self, obj: SyncJob) -> str:
        url = reverse("admin:pos_sync_order_change", args=[obj.order_id])
        return format_html('<a href="{}">#{}</a>', url, obj.order_id)

    @admin.display(description="restaurant", ordering="order__connection__restaurant_name")
    def restaurant(self, obj: SyncJob) -> str:
        return obj.order.connection.restaurant_name

    @admin.display(description="last error")
    def short_error(self, obj: SyncJob) -> str:
        return Truncator(obj.last_error).chars(80)

    @admin.action(description="Requeue selected dead jobs", permissions=["requeue"])
    def requeue(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        actor = signed_in_user(request)
        done = 0
        for job in queryset.order_by("pk"):
            if job.status != SyncJobStatus.DEAD:
                self.message_user(request, f"Job #{job.pk} is {job.status}, not dead: left alone.", messages.WARNING)
                continue
            try:
                services.requeue_sync_job(job_id=job.pk, actor=actor, reason="requeued in the admin")
            except DomainError as exc:
                report_error(request, exc, prefix=f"Job #{job.pk}: ")
                continue
            done += 1
        if done:
            self.message_user(request, f"{done} dead job(s) requeued.", messages.SUCCESS)
