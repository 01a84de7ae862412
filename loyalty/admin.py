from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.admin_mixins import StateDiagramAdminMixin
from core.actors import signed_in_user
from core.admin_base import SuperAdminReadOnlyAdmin
from core.admin_messages import report_error
from core.errors import DomainError
from loyalty import selectors, services
from loyalty.models import DiscountStatus, LoyaltyDiscount, Subscription


@admin.register(LoyaltyDiscount)
class LoyaltyDiscountAdmin(StateDiagramAdminMixin, SuperAdminReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "anniversary",
        "status",
        "code",
        "stripe_promotion_code_id",
        "attempts",
        "created_at",
        "applied_at",
        "short_error",
    ]
    list_filter = ["status", "anniversary"]
    search_fields = ["user__username", "user__email", "code", "stripe_promotion_code_id"]
    list_select_related = ["user"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in LoyaltyDiscount._meta.concrete_fields]
    actions = ["revoke"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[LoyaltyDiscount]:
        return selectors.discounts_for_admin()

    @admin.display(description="last error")
    def short_error(self, discount: LoyaltyDiscount) -> str:
        return discount.last_error[:80]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("loyalty.revoke_loyaltydiscount")

    @admin.action(description="Revoke selected discounts (deactivates their codes at Stripe)", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[LoyaltyDiscount]) -> None:
        actor = signed_in_user(request)
        done = 0
        for discount in queryset.order_by("pk"):
            if discount.status == DiscountStatus.REVOKED:
                self.message_user(request, f"#{discount.pk} is already revoked.", messages.INFO)
                continue
            try:
                # expected = the status just read: a row that moves before our UPDATE is a Conflict, not an overwrite.
                services.revoke_discount(
                    discount_id=discount.pk, actor=actor, expected_status=discount.status, reason="admin revoke"
                )
            except DomainError as exc:
                report_error(request, exc, prefix=f"#{discount.pk}: ")
                continue
            done += 1
        if done:
            self.message_user(request, f"{done} discount(s) revoked; their codes are deactivated at Stripe.")


@admin.register(Subscription)
class SubscriptionAdmin(SuperAdminReadOnlyAdmin):
    """The Stripe mirror: read-only, written by the customer.subscription.* webhooks."""

    list_display = ["stripe_subscription_id", "user", "stripe_customer_id", "plan", "status", "pro_started_at"]
    list_filter = ["plan", "status"]
    search_fields = ["user__username", "user__email", "stripe_customer_id", "stripe_subscription_id"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Subscription._meta.concrete_fields]
