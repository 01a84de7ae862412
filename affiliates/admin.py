"""Super-admin screens. Rates and statuses are never editable here: actions call the services."""

from collections.abc import Callable
from typing import Any, ClassVar

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from affiliates import services
from affiliates.models import Affiliate, Commission, Referral, StripeAdjustment, Tier, TierEvent
from affiliates.services.tiers import EvaluationOutcome, TierEvaluation
from affiliates.stripe_amounts import from_stripe
from audit.admin_mixins import StateDiagramAdminMixin
from core import currencies
from core.actors import signed_in_user
from core.admin_base import ReadOnlyAdmin, SuperAdminReadOnlyAdmin
from core.admin_messages import report_error
from core.admin_money import Money, money_column
from core.errors import DomainError
from core.money import format_money


def percent(rate: int) -> str:
    return f"{rate}%"


def tier_evaluation_text(name: str, result: TierEvaluation) -> str:
    """What a re-evaluation did, for the person who asked: 'kerem: rate changed from 20% to 25%
    (commissions over the last 90 days: $1,600.00).'"""
    total = format_money(result.window_total, settings.AFFILIATE_CURRENCY)
    basis = f"(commissions over the last 90 days: {total})"
    if result.outcome == EvaluationOutcome.CHANGED:
        return f"{name}: rate changed from {result.from_rate}% to {result.to_rate}% {basis}."
    if result.outcome == EvaluationOutcome.RACE_LOST:
        return f"{name}: left unchanged, another evaluation changed the rate at the same moment {basis}."
    return f"{name}: rate stays {result.from_rate}% {basis}."


@admin.register(Affiliate)
class AffiliateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "rate_shown", "kyc_status", "wise_recipient_id", "created_at"]
    list_filter = ["commission_rate", "kyc_status"]
    search_fields = ["user__username", "user__email", "wise_recipient_id"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    # The rate belongs to tier evaluation (its optimistic UPDATE is the only writer).
    readonly_fields = ["commission_rate", "commission_version", "created_at"]
    actions = ["reevaluate_tier"]

    @admin.display(description="commission rate", ordering="commission_rate")
    def rate_shown(self, obj: Affiliate) -> str:
        return percent(obj.commission_rate)

    @admin.action(description="Re-evaluate the tier of the selected affiliates now")
    def reevaluate_tier(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        actor = signed_in_user(request)
        for affiliate_id, name in queryset.values_list("pk", "user__username"):
            try:
                result = services.evaluate_tier(affiliate_id=affiliate_id, actor=actor, cause="admin re-evaluation")
            except DomainError as exc:
                report_error(request, exc, prefix=f"{name}: ")
                continue
            self.message_user(request, tier_evaluation_text(name, result))


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ["stripe_customer_id", "affiliate", "created_at"]
    search_fields = ["stripe_customer_id", "affiliate__user__username"]
    list_select_related = ["affiliate__user"]
    autocomplete_fields = ["affiliate"]


@admin.register(Commission)
class CommissionAdmin(StateDiagramAdminMixin, ReadOnlyAdmin):
    """Commissions come from Stripe's invoice.paid only; the actions change status through services."""

    list_display = [
        "id",
        "affiliate",
        "stripe_invoice_id",
        "amount_shown",
        "rate_shown",
        "reversed_shown",
        "disputed",
        "status",
        "created_at",
    ]
    # The change page (view only): amounts formatted in their currency, not raw columns.
    fields: ClassVar[tuple[str, ...]] = (
        "affiliate",
        "status",
        "amount_shown",
        "rate_shown",
        "invoice_paid_shown",
        "reversed_shown",
        "disputed",
        "stripe_invoice_id",
        "stripe_event_id",
        "created_at",
    )
    readonly_fields = fields
    list_filter = ["status", "disputed", "currency"]
    search_fields = ["stripe_invoice_id", "stripe_event_id", "affiliate__user__username"]
    list_select_related = ["affiliate__user"]
    date_hierarchy = "created_at"
    actions = ["approve_selected", "reverse_selected"]

    @money_column("Commission", ordering="amount")
    def amount_shown(self, obj: Commission) -> Money | None:
        return obj.amount_display, obj.currency  # the currency's own decimals: KWD 0.200, $20.00, ¥500

    @admin.display(description="rate", ordering="rate")
    def rate_shown(self, obj: Commission) -> str:
        return percent(obj.rate)

    @money_column("Taken back")  # by refunds and lost disputes
    def reversed_shown(self, obj: Commission) -> Money | None:
        return (currencies.from_minor(obj.reversed_minor, obj.currency), obj.currency) if obj.reversed_minor else None

    @money_column("Invoice paid")
    def invoice_paid_shown(self, obj: Commission) -> Money | None:
        paid = obj.invoice_amount_paid
        return None if paid is None else (from_stripe(paid, obj.currency), obj.currency)

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
    list_display = ["name", "rate_shown", "threshold_shown", "updated_at"]
    ordering = ["threshold"]

    @admin.display(description="commission rate", ordering="commission_rate")
    def rate_shown(self, obj: Tier) -> str:
        return percent(obj.commission_rate)

    @money_column("From 90-day commissions of", ordering="threshold")
    def threshold_shown(self, obj: Tier) -> Money | None:
        return obj.threshold, settings.AFFILIATE_CURRENCY


@admin.register(TierEvent)
class TierEventAdmin(StateDiagramAdminMixin, SuperAdminReadOnlyAdmin):
    """Every event, superseded duplicates included (the dashboard shows active ones only)."""

    list_display = ["id", "affiliate", "from_rate_shown", "to_rate_shown", "tier_name", "status", "cause", "created_at"]
    fields: ClassVar[tuple[str, ...]] = (
        "affiliate",
        "from_rate_shown",
        "to_rate_shown",
        "tier_name",
        "window_total_shown",
        "status",
        "cause",
        "created_at",
    )
    readonly_fields = fields
    list_filter = ["status", "to_rate"]
    search_fields = ["affiliate__user__username", "cause"]
    list_select_related = ["affiliate__user"]
    date_hierarchy = "created_at"

    @admin.display(description="from rate", ordering="from_rate")
    def from_rate_shown(self, obj: TierEvent) -> str:
        return percent(obj.from_rate)

    @admin.display(description="to rate", ordering="to_rate")
    def to_rate_shown(self, obj: TierEvent) -> str:
        return percent(obj.to_rate)

    @money_column("90-day commissions that decided it")
    def window_total_shown(self, obj: TierEvent) -> Money | None:
        return None if obj.window_total is None else (obj.window_total, settings.AFFILIATE_CURRENCY)


@admin.register(StripeAdjustment)
class StripeAdjustmentAdmin(ReadOnlyAdmin):
    """Refunds and disputes as Stripe reported them; a blank invoice is still being matched."""

    list_display = [
        "id",
        "kind",
        "stripe_object_id",
        "stripe_invoice_id",
        "stripe_payment_intent_id",
        "amount_shown",
        "charge_amount_shown",
        "status",
        "updated_at",
    ]
    fields: ClassVar[tuple[str, ...]] = (
        "kind",
        "status",
        "amount_shown",
        "charge_amount_shown",
        "stripe_object_id",
        "stripe_charge_id",
        "stripe_payment_intent_id",
        "stripe_invoice_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    list_filter = ["kind", "status", "currency"]
    search_fields = ["stripe_object_id", "stripe_charge_id", "stripe_payment_intent_id", "stripe_invoice_id"]

    # Stripe's amounts are in its smallest unit by its own convention (affiliates.stripe_amounts).
    @money_column("Refunded or disputed", ordering="amount")
    def amount_shown(self, obj: StripeAdjustment) -> Money | None:
        return from_stripe(obj.amount, obj.currency), obj.currency

    @money_column("Charge")
    def charge_amount_shown(self, obj: StripeAdjustment) -> Money | None:
        return (from_stripe(obj.charge_amount, obj.currency), obj.currency) if obj.charge_amount else None
