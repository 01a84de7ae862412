"""Super-admin screens. Rates and statuses are never editable here: actions call the services."""

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from affiliates import services
from affiliates.models import Affiliate, Commission, Referral, StripeAdjustment, Tier, TierEvent
from core import currencies
from core.actors import signed_in_user
from core.admin_base import ReadOnlyAdmin, SuperAdminReadOnlyAdmin
from core.admin_messages import report_error
from core.errors import DomainError


@admin.register(Affiliate)
class AffiliateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "commission_rate", "kyc_status", "wise_recipient_id", "created_at"]
    list_filter = ["commission_rate", "kyc_status"]
    search_fields = ["user__username", "user__email", "wise_recipient_id"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    # The rate belongs to tier evaluation (its optimistic UPDATE is the only writer).
    readonly_fields = ["commission_rate", "commission_version", "created_at"]
    actions = ["reevaluate_tier"]

    @admin.action(description="Re-evaluate the tier of the selected affiliates now")
    def reevaluate_tier(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        actor = signed_in_user(request)
        for affiliate_id in queryset.values_list("pk", flat=True):
            try:
                result = services.evaluate_tier(affiliate_id=affiliate_id, actor=actor, cause="admin re-evaluation")
            except DomainError as exc:
                report_error(request, exc, prefix=f"Affiliate #{affiliate_id}: ")
                continue
            self.message_user(
                request, f"Affiliate #{affiliate_id}: {result.outcome} ({result.from_rate}% -> {result.to_rate}%)."
            )


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ["stripe_customer_id", "affiliate", "created_at"]
    search_fields = ["stripe_customer_id", "affiliate__user__username"]
    list_select_related = ["affiliate__user"]
    autocomplete_fields = ["affiliate"]


@admin.register(Commission)
class CommissionAdmin(ReadOnlyAdmin):
    """Commissions come from Stripe's invoice.paid only; the actions change status through services."""

    list_display = [
        "id",
        "affiliate",
        "stripe_invoice_id",
        "amount_shown",
        "currency",
        "rate",
        "reversed_shown",
        "disputed",
        "status",
        "created_at",
    ]
    list_filter = ["status", "disputed", "currency"]
    search_fields = ["stripe_invoice_id", "stripe_event_id", "affiliate__user__username"]
    list_select_related = ["affiliate__user"]
    date_hierarchy = "created_at"
    actions = ["approve_selected", "reverse_selected"]

    @admin.display(description="amount", ordering="amount")
    def amount_shown(self, obj: Commission) -> str:
        return str(obj.amount_display)  # the currency's own decimals: 0.200 KWD, 20.00 USD, 500 JPY

    @admin.display(description="refunded / lost")
    def reversed_shown(self, obj: Commission) -> str:
        return str(currencies.from_minor(obj.reversed_minor, obj.currency)) if obj.reversed_minor else "-"

    @admin.action(description="Approve selected commissions (make them payable)")
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Commission]) -> None:
        self._apply(request, queryset, "approved", services.approve_commission)

    @admin.action(description="Reverse selected commissions")
    def reverse_selected(self, request: HttpRequest, queryset: QuerySet[Commission]) -> None:
        def reverse(**kwargs: Any) -> Commission:
            return services.reverse_commission(reason="reversed by a super-admin", **kwargs)

        self._apply(request, queryset, "reversed", reverse)

    def _apply(
        self, request: HttpRequest, queryset: QuerySet[Commission], done: str, service: Callable[..., Commission]
    ) -> None:
        if not request.user.is_superuser:
            self.message_user(request, "Only super-admins change commissions.", messages.ERROR)
            return
        actor = signed_in_user(request)
        changed = 0
        # The status each row had when the reviewer chose it: a row moved since is a Conflict, not a redo.
        for commission_id, seen in queryset.values_list("pk", "status"):
            try:
                service(commission_id=commission_id, actor=actor, expected_status=seen)
            except DomainError as exc:
                report_error(request, exc, prefix=f"Commission #{commission_id}: ")
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{changed} commission(s) {done}.", messages.SUCCESS)


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = ["name", "commission_rate", "threshold", "updated_at"]
    ordering = ["threshold"]


@admin.register(TierEvent)
class TierEventAdmin(SuperAdminReadOnlyAdmin):
    """Every event, superseded duplicates included (the dashboard shows active ones only)."""

    list_display = ["id", "affiliate", "from_rate", "to_rate", "tier_name", "status", "cause", "created_at"]
    list_filter = ["status", "to_rate"]
    search_fields = ["affiliate__user__username", "cause"]
    list_select_related = ["affiliate__user"]
    date_hierarchy = "created_at"


@admin.register(StripeAdjustment)
class StripeAdjustmentAdmin(ReadOnlyAdmin):
    """Refunds and disputes as Stripe reported them; a blank invoice is still being matched."""

    list_display = [
        "id",
        "kind",
        "stripe_object_id",
        "stripe_invoice_id",
        "stripe_payment_intent_id",
        "amount",
        "charge_amount",
        "currency",
        "status",
        "updated_at",
    ]
    list_filter = ["kind", "status", "currency"]
    search_fields = ["stripe_object_id", "stripe_charge_id", "stripe_payment_intent_id", "stripe_invoice_id"]
